"""Stopping (SIGTERM: bot.stop) in the middle of a burst: every request the bot answered
200 is carried out, none lost because the store closed under its post-ack work."""

from __future__ import annotations

import asyncio

from bot.store import create_store
from tests.e2e.conftest import HarnessFactory

BURST = 12


async def test_every_declaration_acked_before_a_stop_is_declared(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness("sqlite")
    answers = await asyncio.gather(
        *(harness.command(f"declare P3 Disk full on db-{n}") for n in range(BURST))
    )
    assert [answer.status for answer in answers] == [200] * BURST
    await harness.bot.stop()  # at once, as SIGTERM does: acked work may still be running

    store = create_store(harness.bot.settings.DATABASE_URL)
    await store.open()
    try:
        async with store.transaction() as tx:
            row = await tx.fetchone("SELECT COUNT(*) AS n FROM incidents")
    finally:
        await store.close()
    assert row is not None and row["n"] == BURST
