"""A request that waited for the database past DATABASE_QUEUE_SECONDS is told the bot is
busy, not that the database is down, and /healthz stays 200 (issue 7)."""

from __future__ import annotations

from bot.slack import error_text
from tests.e2e.conftest import HarnessFactory


async def test_waiting_past_the_bound_is_answered_busy_not_down(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness("postgres", DATABASE_POOL_SIZE=1, DATABASE_QUEUE_SECONDS=0.5)
    healthz = harness.app_url.replace("/slack/events", "/healthz")
    async with harness.store.transaction() as tx:  # another request holds the only connection
        await tx.fetchone("SELECT 1 AS one")
        assert (await harness.command("declare P2 Search is slow")).status == 200
        [reply] = await harness.replies(timeout=15)
        async with harness.sender._session.get(healthz) as health:  # type: ignore[union-attr]
            assert health.status == 200  # busy is alive: no restart for load
    assert reply["text"] == error_text.store_busy()
    assert "can't reach" not in reply["text"]
    assert await harness.services.incidents.list() == []  # nothing was changed
    await harness.command("declare P2 Search is slow")  # and once it is free, it is served
    [reply] = await harness.replies(timeout=15)
    assert reply["text"].startswith("Declared")
