"""The outbox on every store: each incident's effects in the order queued, each once, across
dispatchers and faults; short retries; retention that never drops an undone effect."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from bot import outbox
from bot.clock import FakeClock
from bot.errors import NotifierError
from bot.outbox import Effect, OutboxDispatcher
from bot.store import Store
from bot.store.sqlite import SqliteStore
from tests.contract.outbox_rows import NOW, last_id, outbox_row, queued


async def _ids(store: Store) -> set[int]:
    async with store.transaction() as tx:
        return {int(r["id"]) for r in await tx.fetchall("SELECT id FROM outbox")}


async def test_each_incidents_effects_arrive_in_order_once_across_dispatchers_under_faults(
    store: Store, open_store: Callable[[], Store]
) -> None:
    clock = FakeClock(NOW)
    incidents = [f"INC-20261127-00{n}" for n in range(1, 5)]
    for n in range(10):  # interleaved, as several incidents' changes are
        for incident in incidents:
            await queued(store, "post", {"n": n}, incident)
    delivered: dict[str, list[int]] = defaultdict(list)
    tries: dict[int, int] = defaultdict(int)

    async def post(effect: Effect) -> None:
        n = effect.payload["n"]
        tries[effect.id] += 1
        await asyncio.sleep(0)  # let the other dispatcher interleave
        if n % 3 == 1 and tries[effect.id] == 1:
            raise NotifierError("Slack error: 503", retryable=True)  # a 5xx: back-off
        if n % 4 == 2 and tries[effect.id] <= 2:
            raise NotifierError("Slack error: ratelimited", retry_after=1.0)  # a run of 429s
        delivered[effect.lane or ""].append(n)

    other = open_store()
    await other.open()
    dispatchers = [OutboxDispatcher(s, clock, batch_size=3) for s in (store, other)]
    for dispatcher in dispatchers:
        dispatcher.register("post", post)
    try:
        for _ in range(30):
            await asyncio.gather(*(d.deliver_due() for d in dispatchers))
            if not await dispatchers[0].pending_count():
                break
            clock.advance(
                seconds=2.4
            )  # a first retry's back-off (2 s +-20%); more than Retry-After
    finally:
        await other.close()
    assert dict(delivered) == {incident: list(range(10)) for incident in incidents}
    assert await dispatchers[0].pending_count() == 0


async def test_a_follow_up_goes_right_after_the_effect_that_queued_it(store: Store) -> None:
    clock = FakeClock(NOW)
    seen: list[str] = []
    dispatcher = OutboxDispatcher(store, clock)

    async def set_up(effect: Effect) -> None:
        seen.append("war room")
        async with store.transaction() as tx:
            for step in ("invite", "summary"):  # follow-ups of this incident
                await outbox.enqueue(tx, NOW, "step", {"name": step}, lane="INC-1")
            # Another incident's effect queued here keeps its own place.
            await outbox.enqueue(tx, NOW, "step", {"name": "other"}, lane="INC-2")

    async def step(effect: Effect) -> None:
        seen.append(effect.payload["name"])

    dispatcher.register("set_up", set_up)
    dispatcher.register("step", step)
    await queued(store, "set_up", {}, "INC-1")
    await queued(store, "step", {"name": "ack notice"}, "INC-1")  # queued before the room
    await queued(store, "step", {"name": "first of INC-2"}, "INC-2")
    await dispatcher.deliver_due()
    incident_1 = [s for s in seen if s not in ("other", "first of INC-2")]
    assert incident_1 == ["war room", "invite", "summary", "ack notice"]
    assert seen.index("first of INC-2") < seen.index("other")


async def test_a_handler_that_raises_is_retried_after_the_back_off_not_its_claim(
    store: Store,
) -> None:
    clock = FakeClock(NOW)
    dispatcher = OutboxDispatcher(store, clock)
    delivered: list[str] = []

    async def handler(effect: Effect) -> None:
        if effect.payload["name"] == "buggy" and effect.attempts == 1:
            raise AttributeError("'str' object has no attribute 'get'")
        delivered.append(effect.payload["name"])

    dispatcher.register("post", handler)
    buggy = await queued(store, "post", {"name": "buggy"}, "INC-1")
    await queued(store, "post", {"name": "other incident"}, "INC-2")
    await dispatcher.deliver_due()
    assert delivered == ["other incident"]  # the rest of the batch was not held up
    row = await outbox_row(store, buggy)
    assert row["attempts"] == 1 and row["claimed_until"] is None
    # 2 s, spread by 20% (jitter)
    assert 1.6 <= row["available_at"] - NOW.timestamp() <= 2.4
    clock.advance(seconds=2.4)
    await dispatcher.deliver_due()
    assert delivered == ["other incident", "buggy"]


async def test_a_database_outage_under_a_handler_delays_an_effect_and_never_fails_it(
    store: Store, tmp_path: Path
) -> None:
    # A handler that met the database down (or too busy) was counted as a bug of ours and
    # its effect failed for good after `max_attempts` tries: a notification already
    # accepted, lost to a database outage, and its failure reported as Slack's.
    clock = FakeClock(NOW)
    dispatcher = OutboxDispatcher(store, clock, max_attempts=2)
    where = tmp_path / "data"
    where.write_text("a file where the database's directory belongs: it cannot open")
    delivered: list[int] = []
    failures: list[str] = []

    async def handler(effect: Effect) -> None:
        reader = SqliteStore(f"sqlite:///{where}/chatops.db")  # StoreUnavailable while down
        try:
            await reader.open()
            delivered.append(effect.attempts)
        finally:
            await reader.close()

    async def on_failure(effect: Effect, error: NotifierError) -> None:
        failures.append(error.error_code)

    dispatcher.register("post", handler, on_failure=on_failure)
    effect_id = await queued(store, "post", {}, "INC-1")
    for _ in range(5):  # more attempts than max_attempts
        await dispatcher.deliver_due()
        row = await outbox_row(store, effect_id)
        assert row["failed_at"] is None and row["delivered_at"] is None
        clock.advance(seconds=300)  # past the longest back-off
    assert failures == [] and "cannot open SQLite database" in row["last_error"]
    where.unlink()
    where.mkdir()  # the database is back
    await dispatcher.deliver_due()
    assert delivered == [6] and failures == []
    assert (await outbox_row(store, effect_id))["delivered_at"] is not None


async def test_a_rate_limit_waits_its_retry_after_and_costs_no_attempt(store: Store) -> None:
    clock = FakeClock(NOW)
    dispatcher = OutboxDispatcher(store, clock, max_attempts=2)
    tries: list[int] = []

    async def handler(effect: Effect) -> None:
        tries.append(effect.attempts)
        if len(tries) <= 3:
            raise NotifierError("Slack error: ratelimited", retry_after=7.0)

    dispatcher.register("post", handler)
    effect_id = await queued(store, "post", {}, "INC-1")
    for _ in range(3):
        await dispatcher.deliver_due()
        row = await outbox_row(store, effect_id)
        assert row["available_at"] == (clock.now() + timedelta(seconds=7)).timestamp()
        assert row["attempts"] == 0 and row["failed_at"] is None
        clock.advance(seconds=7)
    await dispatcher.deliver_due()
    assert tries == [1, 1, 1, 1]
    assert (await outbox_row(store, effect_id))["delivered_at"] is not None


async def test_a_slack_outage_delays_an_effect_for_up_to_a_day_and_loses_it_no_sooner(
    store: Store,
) -> None:
    clock = FakeClock(NOW)
    dispatcher = OutboxDispatcher(store, clock)
    slack_back_at = NOW + timedelta(hours=3)
    reported: list[str] = []

    async def handler(effect: Effect) -> None:
        if effect.payload["outage"] == "endless" or clock.now() < slack_back_at:
            raise NotifierError("Slack error: 503", retryable=True)

    async def on_failure(effect: Effect, error: NotifierError) -> None:
        reported.append(effect.payload["outage"])

    async def run_until(when: datetime) -> None:
        while clock.now() < when:
            await dispatcher.deliver_due()
            clock.advance(seconds=300)  # the longest back-off

    dispatcher.register("post", handler, on_failure=on_failure)
    three_hours = await queued(store, "post", {"outage": "three hours"}, "INC-1")
    await run_until(slack_back_at + timedelta(minutes=10))
    row = await outbox_row(store, three_hours)
    assert row["delivered_at"] is not None and row["attempts"] > 8 and reported == []

    async with store.transaction() as tx:
        await outbox.enqueue(tx, clock.now(), "post", {"outage": "endless"}, lane="INC-2")
        endless = await last_id(tx)
    await run_until(clock.now() + timedelta(hours=23, minutes=50))
    assert (await outbox_row(store, endless))["failed_at"] is None and reported == []
    await run_until(clock.now() + timedelta(minutes=20))
    assert (await outbox_row(store, endless))["failed_at"] is not None and reported == ["endless"]


async def _settle_states(store: Store, dispatcher: OutboxDispatcher) -> dict[str, int]:
    """One effect in each state: delivered, failed for good, retrying, never tried."""

    async def handler(effect: Effect) -> None:
        outcome = effect.payload["outcome"]
        if outcome == "failed":
            raise NotifierError("Slack error: channel_not_found", retryable=False)
        if outcome == "retrying":
            raise NotifierError("Slack error: 503", retryable=True)

    dispatcher.register("post", handler)
    ids = {}
    for n, outcome in enumerate(("delivered", "failed", "retrying")):
        ids[outcome] = await queued(store, "post", {"outcome": outcome}, f"INC-{n}")
    await dispatcher.deliver_due()
    ids["waiting"] = await queued(store, "post", {"outcome": "waiting"}, "INC-9")
    return ids


async def test_prune_drops_old_delivered_then_old_failed_never_an_undone_one(
    store: Store,
) -> None:
    clock = FakeClock(NOW)
    dispatcher = OutboxDispatcher(store, clock)
    ids = await _settle_states(store, dispatcher)
    assert await dispatcher.prune() == 0  # nothing is old yet

    clock.advance(days=7, seconds=1)
    assert await dispatcher.prune() == 1
    assert await _ids(store) == {ids["failed"], ids["retrying"], ids["waiting"]}

    clock.advance(days=23)
    assert await dispatcher.prune() == 1
    assert await _ids(store) == {ids["retrying"], ids["waiting"]}

    clock.advance(days=365)  # undone effects stay however old they are
    assert await dispatcher.prune() == 0
    assert await dispatcher.pending_count() == 2


async def test_the_running_dispatcher_prunes_on_its_schedule(store: Store) -> None:
    clock = FakeClock(NOW)
    dispatcher = OutboxDispatcher(store, clock, poll_interval=0.02)

    async def handler(effect: Effect) -> None:
        if effect.payload["outcome"] == "retrying":
            raise NotifierError("Slack error: 503", retryable=True)

    dispatcher.register("post", handler)
    delivered = await queued(store, "post", {"outcome": "delivered"}, "INC-1")
    retrying = await queued(store, "post", {"outcome": "retrying"}, "INC-2")

    async def prune_runs(count: int) -> None:
        for _ in range(500):
            if dispatcher.prune_runs >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"the dispatcher pruned {dispatcher.prune_runs} times, not {count}")

    dispatcher.start()
    try:
        await prune_runs(1)  # the first round delivers, then prunes: nothing is old yet
        assert (await outbox_row(store, delivered))["delivered_at"] is not None
        clock.advance(days=7, seconds=1)
        dispatcher.kick()
        await prune_runs(2)
        assert await _ids(store) == {retrying}
    finally:
        await dispatcher.stop()


async def test_a_claim_that_ran_out_in_a_slow_batch_is_not_delivered_twice(
    store: Store, open_store: Callable[[], Store]
) -> None:
    """A batch is claimed at once and delivered one by one, each waiting for its Slack slot
    (a two-replica burst once posted one announcement twice): an effect whose claim ran out
    meanwhile and was taken over by another process is left to that process."""
    clock = FakeClock(NOW)
    ids = [await queued(store, "post", {"n": n}, f"INC-20261127-00{n}") for n in (1, 2, 3)]
    handled: dict[int, int] = defaultdict(int)
    other_store = open_store()
    await other_store.open()
    other = OutboxDispatcher(other_store, clock)

    async def post(effect: Effect) -> None:
        handled[effect.id] += 1

    async def slow_post(effect: Effect) -> None:
        await post(effect)
        clock.advance(seconds=45)  # each post waits out its pace slot
        if effect.id == ids[1]:
            # The third's claim (taken with the batch, 90 s ago) has run out: the other
            # replica takes it over and delivers it.
            assert await other.deliver_due() == 1

    other.register("post", post)
    first = OutboxDispatcher(store, clock)
    first.register("post", slow_post)
    try:
        assert await first.deliver_due() == 2
    finally:
        await other_store.close()
    assert dict(handled) == {ids[0]: 1, ids[1]: 1, ids[2]: 1}
    rows = [await outbox_row(store, i) for i in ids]
    assert all(row["delivered_at"] is not None for row in rows)


async def test_heads_of_different_lanes_are_delivered_together_up_to_the_limit(
    store: Store,
) -> None:
    clock = FakeClock(NOW)
    dispatcher = OutboxDispatcher(store, clock, concurrency=4)
    for n in range(12):
        await queued(store, "post", {"n": n}, f"INC-{n % 6}")  # two effects in each lane
    in_flight: set[str] = set()
    peak = 0
    all_slots_busy = asyncio.Event()
    delivered: dict[str, list[int]] = defaultdict(list)

    async def post(effect: Effect) -> None:
        nonlocal peak
        assert effect.lane not in in_flight  # one lane, one at a time
        in_flight.add(effect.lane or "")
        peak = max(peak, len(in_flight))
        if len(in_flight) == 4:
            all_slots_busy.set()
        async with asyncio.timeout(5):  # a guard: the limit never filled would hang here
            await all_slots_busy.wait()
        in_flight.discard(effect.lane or "")
        delivered[effect.lane or ""].append(effect.payload["n"])

    dispatcher.register("post", post)
    assert await dispatcher.deliver_due() == 12
    assert peak == 4
    assert dict(delivered) == {f"INC-{n}": [n, n + 6] for n in range(6)}


async def test_a_batch_is_marked_done_in_one_statement(store: Store) -> None:
    clock = FakeClock(NOW)
    dispatcher = OutboxDispatcher(store, clock)
    ids = [await queued(store, "post", {"n": n}, f"INC-{n}") for n in range(32)]
    seen: list[int] = []

    async def post(effect: Effect) -> None:
        seen.append(effect.id)

    dispatcher.register("post", post)
    assert await dispatcher.deliver_due() == 32
    assert seen == ids
    rows = [await outbox_row(store, i) for i in ids]
    assert all(row["delivered_at"] is not None for row in rows)
    assert dispatcher.completions.statements == 1
    assert await dispatcher.pending_count() == 0


async def test_a_stopped_dispatcher_marks_what_it_delivered_before_it_goes(store: Store) -> None:
    """Marks wait for the end of the batch: a stop in the middle must not drop them (a
    restart would post those messages again)."""
    clock = FakeClock(NOW)
    # A stop waits for the delivery under way (up to its limit, 1 s here, not 29): until the
    # stuck one's own timeout, 0.4 s.
    dispatcher = OutboxDispatcher(store, clock, claim_seconds=4.0, handler_timeout=0.4)
    ids = [await queued(store, "post", {"n": n}, f"INC-{n}") for n in range(3)]
    stuck = asyncio.Event()

    async def post(effect: Effect) -> None:
        if effect.payload["n"] == 2:
            stuck.set()
            await asyncio.Event().wait()  # Slack never answers this one

    dispatcher.register("post", post)
    dispatcher.start()
    async with asyncio.timeout(10):
        await stuck.wait()
    await dispatcher.stop()
    rows = [await outbox_row(store, i) for i in ids]
    assert [row["delivered_at"] is not None for row in rows] == [True, True, False]


async def _counter(store: Store, day: str) -> int | None:
    async with store.transaction() as tx:
        row = await tx.fetchone("SELECT last_seq FROM incident_counters WHERE day = ?", (day,))
    return None if row is None else int(row["last_seq"])


async def test_what_a_delivery_stores_goes_with_its_mark_before_its_lanes_next_effect(
    store: Store,
) -> None:
    """The announcement's ts is stored with its done mark (no round trip of its own); the
    lane's next effect, claimed in the same batch, must still find it."""
    clock = FakeClock(NOW)
    dispatcher = OutboxDispatcher(store, clock)
    for lane in ("INC-1", "INC-2"):
        await queued(store, "post", {"day": lane}, lane)
        await queued(store, "read", {"day": lane}, lane)
    await queued(store, "fails", {"day": "INC-3"}, "INC-3")
    seen: dict[str, int | None] = {}

    async def post(effect: Effect) -> None:
        day = effect.payload["day"]
        sql = "INSERT INTO incident_counters (day, last_seq) VALUES (?, ?)"
        await outbox.write_with_mark(store, sql, (day, 7))
        assert await _counter(store, day) is None  # not yet: it goes with the mark

    async def read(effect: Effect) -> None:
        seen[effect.payload["day"]] = await _counter(store, effect.payload["day"])

    async def fails(effect: Effect) -> None:
        sql = "INSERT INTO incident_counters (day, last_seq) VALUES (?, ?)"
        await outbox.write_with_mark(store, sql, (effect.payload["day"], 1))
        raise NotifierError("Slack error: 503", retryable=True)  # nothing was posted

    for kind, handler in (("post", post), ("read", read), ("fails", fails)):
        dispatcher.register(kind, handler)
    assert await dispatcher.deliver_due() == 4  # one batch: both lanes' runs of two
    assert seen == {"INC-1": 7, "INC-2": 7}
    assert await _counter(store, "INC-3") is None  # not delivered: its write is dropped
    assert await dispatcher.pending_count() == 1


async def test_a_write_that_cannot_be_stored_does_not_hold_the_marks_back(store: Store) -> None:
    clock = FakeClock(NOW)
    dispatcher = OutboxDispatcher(store, clock)
    ids = [await queued(store, "post", {"n": n}, f"INC-{n}") for n in range(2)]

    async def post(effect: Effect) -> None:
        # The same key twice: the second INSERT violates the primary key.
        sql = "INSERT INTO incident_counters (day, last_seq) VALUES (?, ?)"
        await outbox.write_with_mark(store, sql, ("same", effect.payload["n"]))

    dispatcher.register("post", post)
    assert await dispatcher.deliver_due() == 2
    rows = [await outbox_row(store, i) for i in ids]
    assert all(row["delivered_at"] is not None for row in rows)
    assert await dispatcher.pending_count() == 0
