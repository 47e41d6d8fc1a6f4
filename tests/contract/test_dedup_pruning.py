"""handled_requests is pruned past its retention window, on both stores, on a fake clock;
what de-duplication still needs (a retry within the window) is never forgotten."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot import dedup
from bot.app import build_client
from bot.clock import FakeClock
from bot.dedup import HandledRequestsPruner
from bot.policy import load_policy
from bot.services import build_services
from bot.slack.notifier import SlackNotifier
from bot.store import Store, create_store

T0 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
DAY = 86_400.0


async def _handled(store: Store) -> set[str]:
    async with store.transaction() as tx:
        rows = await tx.fetchall("SELECT request_id FROM handled_requests")
    return {row["request_id"] for row in rows}


async def _mark(store: Store, request_id: str, at: datetime) -> bool:
    async with store.transaction() as tx:
        return await dedup.mark_handled(tx, request_id, at)


async def test_prune_forgets_only_what_is_past_the_window(store: Store) -> None:
    clock = FakeClock(T0)
    for hours_ago in (49, 25, 24.01, 23.99, 1, 0):
        await _mark(store, f"r-{hours_ago}h", T0 - timedelta(hours=hours_ago))
    pruner = HandledRequestsPruner(store, clock, retention=DAY, batch_size=2)
    assert await pruner.prune() == 3  # in batches of two
    assert await _handled(store) == {"r-23.99h", "r-1h", "r-0h"}
    # A Slack retry of a request still inside the window is still a duplicate.
    assert not await _mark(store, "r-1h", T0)
    clock.advance(hours=2)
    assert await pruner.prune() == 1
    assert await _handled(store) == {"r-1h", "r-0h"}
    assert await pruner.prune() == 0


async def test_the_running_bot_prunes_on_its_schedule(store_url: str) -> None:
    """Services.start runs the pruner with the reminders; it keeps going on its interval."""
    clock = FakeClock(T0)
    services = build_services(
        policy=load_policy(None),
        store=create_store(store_url),
        # Never called: no incident here (the port is closed, to be sure of it).
        notifier=SlackNotifier(build_client("xoxb-unused", "http://127.0.0.1:9/api/")),
        clock=clock,
        dedup_retention=DAY,
        dedup_prune_interval=0.05,
    )
    await services.start(run_dispatcher=False)
    try:
        await _mark(services.store, "old", T0 - timedelta(days=2))
        await _mark(services.store, "recent", T0 - timedelta(hours=1))
        for _ in range(200):  # wait for the positive signal: the old row gone
            if "old" not in await _handled(services.store):
                break
            await asyncio.sleep(0.05)
        assert await _handled(services.store) == {"recent"}
        clock.advance(days=1)  # the next round, a day later, forgets the other
        for _ in range(200):
            if not await _handled(services.store):
                break
            await asyncio.sleep(0.05)
        assert await _handled(services.store) == set()
    finally:
        await services.close()
