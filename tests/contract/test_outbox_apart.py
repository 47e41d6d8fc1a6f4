"""The kinds delivered apart on every store (bot.outbox.apart): a call that hangs holds up
only its own lane, and a lane holding effects of both loops' kinds still delivers each once,
in the order queued, across dispatchers, retries and follow-ups."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from bot import outbox
from bot.clock import FakeClock
from bot.errors import NotifierError
from bot.outbox import Effect, OutboxDispatcher
from bot.store import Store
from tests.contract.outbox_rows import NOW, queued
from tests.waiting import until


async def test_a_call_that_hangs_holds_up_its_own_lane_only(store: Store) -> None:
    """Effects went one at a time: a paging service that never answered held every Slack
    post of every incident for the whole call."""
    dispatcher = OutboxDispatcher(store, FakeClock(NOW))
    answered = asyncio.Event()
    posted: list[str] = []
    called: list[str] = []

    async def post(effect: Effect) -> None:
        posted.append(effect.payload["n"])

    async def call(effect: Effect) -> None:
        called.append(effect.payload["n"])
        if effect.payload["n"] == "hangs":
            await answered.wait()

    dispatcher.register("post", post)
    dispatcher.register("call", call, apart=True)
    await queued(store, "call", {"n": "hangs"}, "INC-1/pagerduty")
    await queued(store, "call", {"n": "after it"}, "INC-1/pagerduty")
    await queued(store, "post", {"n": "INC-1"}, "INC-1")
    await queued(store, "call", {"n": "INC-2"}, "INC-2/opsgenie")
    await queued(store, "post", {"n": "INC-2"}, "INC-2")
    delivering = asyncio.create_task(dispatcher.deliver_due())
    try:
        await until(lambda: posted == ["INC-1", "INC-2"], "the posts, while the call hangs")
        await until(lambda: called == ["hangs", "INC-2"], "another lane's call, beside it")
        assert not delivering.done()  # still in the call: its lane's next one waits for it
    finally:
        answered.set()
    assert await delivering == 5
    assert called == ["hangs", "INC-2", "after it"]
    assert await dispatcher.pending_count() == 0


async def test_a_lane_of_both_loops_kinds_keeps_its_order_once_across_dispatchers(
    store: Store, open_store: Callable[[], Store]
) -> None:
    clock = FakeClock(NOW)
    lanes = ["INC-20261127-001", "INC-20261127-002", "INC-20261127-003"]
    for n in range(18):  # interleaved; every third effect a call delivered apart
        for lane in lanes:
            await queued(store, "call" if n % 3 == 1 else "post", {"n": str(n)}, lane)
    for n in range(4):  # effects without a lane keep no order, but still go once
        await queued(store, "call", {"n": f"free{n}"}, None)
    delivered: dict[str | None, list[str]] = defaultdict(list)
    in_flight: set[str] = set()
    tries: dict[int, int] = defaultdict(int)

    def handler(own: Store) -> Callable[[Effect], Any]:
        async def deliver(effect: Effect) -> None:
            lane, n = effect.lane, effect.payload["n"]
            if lane is not None:
                assert lane not in in_flight  # one effect of a lane at a time, any kind
                in_flight.add(lane)
            try:
                tries[effect.id] += 1
                await asyncio.sleep(0)  # let the other loop and dispatcher interleave
                if n.isdigit() and int(n) % 5 == 4 and tries[effect.id] == 1:
                    raise NotifierError("503", retryable=True)
                delivered[lane].append(n)
                if n in ("4", "10"):  # a call's follow-up post, and a post's follow-up call
                    kind = "post" if effect.kind == "call" else "call"
                    async with own.transaction() as tx:
                        await outbox.enqueue(tx, NOW, kind, {"n": f"{n}+"}, lane=lane)
            finally:
                if lane is not None:
                    in_flight.discard(lane)

        return deliver

    other = open_store()
    await other.open()
    dispatchers = [OutboxDispatcher(s, clock, batch_size=8, run_length=4) for s in (store, other)]
    for dispatcher, own in zip(dispatchers, (store, other), strict=True):
        dispatcher.register("post", handler(own))
        dispatcher.register("call", handler(own), apart=True)
    try:
        for _ in range(30):
            await asyncio.gather(*(d.deliver_due() for d in dispatchers))
            if not await dispatchers[0].pending_count():
                break
            clock.advance(seconds=2.4)  # a first retry's back-off (2 s +-20%)
    finally:
        await other.close()
    expected = [s for n in range(18) for s in ([str(n), f"{n}+"] if n in (4, 10) else [str(n)])]
    assert {lane: delivered[lane] for lane in lanes} == {lane: expected for lane in lanes}
    assert sorted(delivered[None]) == [f"free{n}" for n in range(4)]
    assert await dispatchers[0].pending_count() == 0


async def test_the_loops_hand_a_lane_over_to_each_other_without_waiting_for_a_poll(
    store: Store,
) -> None:
    """A lane's next effect of the other loop's kinds is delivered when the one before it is
    done, not at the next poll (here a minute away)."""
    dispatcher = OutboxDispatcher(store, FakeClock(NOW), poll_interval=60.0)
    seen: list[str] = []

    async def deliver(effect: Effect) -> None:
        seen.append(f"{effect.kind} {effect.payload['n']}")

    dispatcher.register("post", deliver)
    dispatcher.register("call", deliver, apart=True)
    for n, kind in enumerate(["post", "call", "call", "post", "call", "post"]):
        await queued(store, kind, {"n": n}, "INC-1")
    dispatcher.start()
    try:
        await until(lambda: len(seen) == 6, "the lane, handed over at each change of kind")
    finally:
        await dispatcher.stop()
    assert seen == ["post 0", "call 1", "call 2", "post 3", "call 4", "post 5"]
