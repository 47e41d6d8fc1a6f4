"""The bot end to end with DATABASE_URL at PgBouncer in transaction mode (README, "Behind
PgBouncer"): declarations, their announcements and audit, across server connections."""

from __future__ import annotations

from tests.e2e.conftest import HarnessFactory
from tests.harness import BotHarness
from tests.pgbouncer_server import PgBouncerServer


async def _declare(harness: BotHarness, title: str) -> None:
    await harness.command("", body=harness.slash(f"declare P2 {title}", user_id="U0ALICE"))
    [reply] = await harness.replies()
    assert "Declared *INC-" in reply["text"], reply["text"]
    await harness.settle()


async def test_declarations_through_transaction_pooling(
    pgbouncer_url: str, pgbouncer_server: PgBouncerServer, make_harness: HarnessFactory
) -> None:
    # pgbouncer_url first: torn down (its server connections closed) after the bot stops.
    harness = await make_harness(database_url=pgbouncer_url, DATABASE_PREPARE=False)
    # More runs of each statement than psycopg's prepare_threshold (5)...
    for n in range(6):
        await _declare(harness, f"Checkout API returns 502 ({n})")
    # ...and then every server connection replaced: nothing of a session survives.
    pgbouncer_server.admin(f"RECONNECT {pgbouncer_url.rsplit('/', 1)[1]}")
    await _declare(harness, "Payments latency")
    await harness.command("list")
    [listed] = await harness.replies()
    assert "Payments latency" in str(listed)

    incidents = await harness.services.incidents.list()
    assert len(incidents) == 7
    announced = [
        call
        for call in harness.double.calls_to("chat.postMessage")
        if str(call.params.get("text", "")).startswith("Incident Update:")
    ]
    assert len(announced) == 7
    declared = [e async for e in harness.services.audit.entries() if e.action == "incident.declare"]
    assert len(declared) == 7
    assert (await harness.services.audit.verify()).ok
