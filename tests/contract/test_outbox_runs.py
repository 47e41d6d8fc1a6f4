"""The outbox's runs on every store: a lane's next effects claimed together, still delivered
once and in order across dispatchers, retries, follow-ups and claims that run out; and a long
lane costing statements per run, not per effect."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from bot import outbox
from bot.clock import FakeClock
from bot.errors import NotifierError
from bot.outbox import Effect, OutboxDispatcher
from bot.store import Row, Statements, Store, Tx, create_store, migrate
from tests.contract.outbox_rows import NOW, outbox_row, queued


class _CountedStatements:
    def __init__(self, tx: Statements, counts: _Counted) -> None:
        self._tx = tx
        self._counts = counts
        self.dialect = tx.dialect

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._counts.statements += 1
        return await self._tx.execute(sql, params)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        self._counts.statements += 1
        return await self._tx.fetchone(sql, params)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self._counts.statements += 1
        return await self._tx.fetchall(sql, params)


class _CountedTx(_CountedStatements):
    def __init__(self, tx: Tx, counts: _Counted) -> None:
        super().__init__(tx, counts)
        self.before_commit = tx.before_commit
        self.after_commit = tx.after_commit


class _Counted:
    """A real store, counting the transactions and statements sent through it (each one a
    round trip to the database; BEGIN and COMMIT are the transaction's)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.dialect = store.dialect
        self.transactions = 0
        self.alone = 0  # autocommit(): statements without a transaction
        self.statements = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_CountedTx]:
        self.transactions += 1
        async with self._store.transaction() as tx:
            yield _CountedTx(tx, self)

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[_CountedStatements]:
        self.alone += 1
        async with self._store.autocommit() as db:
            yield _CountedStatements(db, self)


async def test_a_long_lane_costs_statements_per_run_not_per_effect(store: Store) -> None:
    """Claiming only a lane's head cost a claim (two statements) and a mark per effect: 60
    effects in one lane took 181 statements in 121 transactions."""
    clock = FakeClock(NOW)
    ids = [await queued(store, "post", {"n": n}, "INC-1") for n in range(60)]
    counted = _Counted(store)
    dispatcher = OutboxDispatcher(counted, clock, run_length=20)  # type: ignore[arg-type]
    seen: list[int] = []

    async def post(effect: Effect) -> None:
        seen.append(effect.id)

    dispatcher.register("post", post)
    assert await dispatcher.deliver_due() == 60
    assert seen == ids
    # Three runs of 20: a claim (read, then lock and update) and a mark each, and the claim
    # that finds nothing left. A mark is one UPDATE: no transaction of its own.
    assert counted.statements == 3 * 2 + 3 + 1
    assert counted.transactions == 3 + 1
    assert counted.alone == 3
    assert await dispatcher.pending_count() == 0


async def test_runs_of_few_long_lanes_arrive_in_order_once_across_dispatchers(
    store: Store, open_store: Callable[[], Store]
) -> None:
    clock = FakeClock(NOW)
    lanes = ["INC-20261127-001", "INC-20261127-002", "INC-20261127-003"]
    for n in range(24):  # interleaved, as several incidents' changes are
        for lane in lanes:
            await queued(store, "post", {"n": str(n)}, lane)
    delivered: dict[str, list[str]] = defaultdict(list)
    in_flight: set[str] = set()
    tries: dict[int, int] = defaultdict(int)

    def poster(own: Store) -> Callable[[Effect], Any]:
        async def post(effect: Effect) -> None:
            lane, n = effect.lane or "", effect.payload["n"]
            assert lane not in in_flight  # one effect of a lane at a time, across processes
            in_flight.add(lane)
            try:
                tries[effect.id] += 1
                await asyncio.sleep(0)  # let the other dispatcher interleave
                if n.isdigit() and int(n) % 7 == 3 and tries[effect.id] == 1:
                    raise NotifierError("Slack error: 503", retryable=True)  # mid-run retry
                delivered[lane].append(n)
                if n.isdigit() and int(n) % 10 == 5:  # a follow-up, mid-run
                    async with own.transaction() as tx:
                        await outbox.enqueue(tx, NOW, "post", {"n": f"{n}+"}, lane=lane)
            finally:
                in_flight.discard(lane)

        return post

    other = open_store()
    await other.open()
    dispatchers = [OutboxDispatcher(s, clock, batch_size=8, run_length=5) for s in (store, other)]
    for dispatcher, own in zip(dispatchers, (store, other), strict=True):
        dispatcher.register("post", poster(own))
    try:
        for _ in range(30):
            await asyncio.gather(*(d.deliver_due() for d in dispatchers))
            if not await dispatchers[0].pending_count():
                break
            clock.advance(seconds=2.4)  # a first retry's back-off (2 s +-20%)
    finally:
        await other.close()
    expected = [s for n in range(24) for s in ([str(n), f"{n}+"] if n % 10 == 5 else [str(n)])]
    assert dict(delivered) == {lane: expected for lane in lanes}
    assert await dispatchers[0].pending_count() == 0


async def test_a_retry_in_the_middle_of_a_run_holds_back_the_rest_of_its_lane(
    store: Store,
) -> None:
    clock = FakeClock(NOW)
    lane_a = [await queued(store, "post", {"n": n}, "INC-A") for n in range(4)]
    lane_b = [await queued(store, "post", {"n": n}, "INC-B") for n in range(2)]
    seen: list[int] = []

    async def post(effect: Effect) -> None:
        if effect.id == lane_a[1] and effect.attempts == 1:
            raise NotifierError("Slack error: 503", retryable=True)
        seen.append(effect.id)

    dispatcher = OutboxDispatcher(store, clock)
    dispatcher.register("post", post)
    assert await dispatcher.deliver_due() == 3
    assert seen == [lane_a[0], lane_b[0], lane_b[1]]  # INC-B's run went on
    # The rest of INC-A's run was given back untried: free to claim, no attempt counted.
    for effect_id in lane_a[2:]:
        row = await outbox_row(store, effect_id)
        assert row["claimed_until"] is None and row["attempts"] == 0
        assert row["delivered_at"] is None
    assert await dispatcher.deliver_due() == 0  # the retry's back-off holds its lane
    clock.advance(seconds=2.4)
    assert await dispatcher.deliver_due() == 3
    assert seen == [lane_a[0], lane_b[0], lane_b[1], *lane_a[1:]]


async def test_a_claim_that_ran_out_mid_run_is_not_delivered_twice(
    store: Store, open_store: Callable[[], Store]
) -> None:
    """A run waits claimed while the effects before it are delivered: when those are slow,
    its claim can run out and another process take the rest of the lane over."""
    clock = FakeClock(NOW)
    lane_a = [await queued(store, "post", {"n": n}, "INC-A") for n in range(3)]
    lane_b = await queued(store, "post", {"n": 0}, "INC-B")
    handled: dict[int, int] = defaultdict(int)
    other_store = open_store()
    await other_store.open()
    other = OutboxDispatcher(other_store, clock)

    async def post(effect: Effect) -> None:
        handled[effect.id] += 1

    async def slow_post(effect: Effect) -> None:
        await post(effect)
        if effect.id == lane_a[0]:
            # The rest of INC-A was claimed with its head, as a run.
            later = [await outbox_row(store, i) for i in lane_a[1:]]
            assert all(row["claimed_until"] == effect.claimed_until for row in later)
        clock.advance(seconds=45)  # each post waits out its pace slot
        if effect.id == lane_b:
            # INC-A's head was marked before this post (its claim would have run out under
            # it); the rest of INC-A's claim, 90 s old, has run out: the other process takes
            # both over and delivers them.
            assert await other.deliver_due() == 2

    other.register("post", post)
    first = OutboxDispatcher(store, clock)
    first.register("post", slow_post)
    try:
        assert await first.deliver_due() == 2
    finally:
        await other_store.close()
    assert dict(handled) == {lane_a[0]: 1, lane_b: 1, lane_a[1]: 1, lane_a[2]: 1}
    rows = [await outbox_row(store, i) for i in [*lane_a, lane_b]]
    assert all(row["delivered_at"] is not None for row in rows)
    assert await first.pending_count() == 0


async def test_a_stop_mid_run_gives_back_what_no_handler_started(store: Store) -> None:
    clock = FakeClock(NOW)
    ids = [await queued(store, "post", {"n": n}, "INC-1") for n in range(4)]
    stuck = asyncio.Event()

    async def post(effect: Effect) -> None:
        if effect.payload["n"] == 1:
            stuck.set()
            await asyncio.Event().wait()  # Slack never answers this one

    # 0.4 s for a delivery, which a stop waits for (up to 2 s here): not the default 20 s.
    dispatcher = OutboxDispatcher(store, clock, claim_seconds=6.0, handler_timeout=0.4)
    dispatcher.register("post", post)
    dispatcher.start()
    async with asyncio.timeout(10):
        await stuck.wait()
    await dispatcher.stop()
    rows = [await outbox_row(store, i) for i in ids]
    assert rows[0]["delivered_at"] is not None  # marked before it went
    # Stop waits as long as a delivery may run (its pace waits too): this one's own timeout
    # ended it first, and it is retried.
    assert rows[1]["delivered_at"] is None and rows[1]["last_error"] == "timed out"
    # Never started: free for the next claim at once, not after the claim runs out.
    assert [(r["claimed_until"], r["attempts"]) for r in rows[2:]] == [(None, 0), (None, 0)]


async def test_a_run_stops_before_a_member_another_transaction_holds(postgres_url: str) -> None:
    """PostgreSQL locks rows, not the database: the claim skips a row another transaction
    holds (a debounce's check locks it), and what is behind it in its lane waits too."""
    clock = FakeClock(NOW)
    store, holder = create_store(postgres_url), create_store(postgres_url)
    await store.open()
    await holder.open()
    try:
        await migrate(store)
        ids = [await queued(store, "post", {"n": n}, "INC-1") for n in range(4)]
        seen: list[int] = []

        async def post(effect: Effect) -> None:
            seen.append(effect.id)

        dispatcher = OutboxDispatcher(store, clock)
        dispatcher.register("post", post)
        async with holder.transaction() as tx:
            assert await outbox.waiting(tx, "post", {"n": 1})  # holds the second's row
            assert await dispatcher.deliver_due() == 1
            for effect_id in ids[2:]:  # claimed behind the gap, given back at once
                row = await outbox_row(store, effect_id)
                assert row["claimed_until"] is None and row["attempts"] == 0
        assert await dispatcher.deliver_due() == 3
        assert seen == ids
    finally:
        await store.close()
        await holder.close()


async def test_effects_without_a_lane_keep_no_order_and_hold_nothing_back(store: Store) -> None:
    clock = FakeClock(NOW)
    ids = [await queued(store, "post", {"n": n}, None) for n in range(30)]  # more than a run
    seen: list[int] = []

    async def post(effect: Effect) -> None:
        if effect.id == ids[0] and effect.attempts == 1:
            raise NotifierError("Slack error: 503", retryable=True)
        seen.append(effect.id)

    dispatcher = OutboxDispatcher(store, clock, run_length=5)
    dispatcher.register("post", post)
    assert await dispatcher.deliver_due() == 29  # the retry held none back
    assert seen == ids[1:]
    clock.advance(seconds=2.4)
    assert await dispatcher.deliver_due() == 1
