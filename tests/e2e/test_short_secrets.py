"""A configured secret shorter than eight characters was printed whole: only longer ones were
registered for masking. A paging service that names the key it refused (as a proxy or an
older API may) put a short key into the outbox's error, the log and the timeline's words."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import policy_with, reply
from tests.harness import BotHarness
from tests.waiting import until

SHORT_KEY = "k3y42"  # five characters: a routing key that short is still a secret


@pytest.fixture
async def naming_refuser() -> AsyncIterator[str]:
    """An events endpoint that refuses every key, naming the one it was sent."""

    async def enqueue(request: web.Request) -> web.Response:
        body = await request.json()
        errors = [f"Invalid routing key '{body.get('routing_key')}'"]
        return web.json_response(
            {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
            status=400,
        )

    app = web.Application()
    app.add_routes([web.post("/v2/enqueue", enqueue)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


async def _stored(harness: BotHarness) -> str:
    seen = ""
    async with harness.store.transaction() as tx:
        for table in ("timeline", "audit_log", "outbox"):
            rows = await tx.fetchall(f"SELECT * FROM {table}")
            seen += json.dumps([dict(row) for row in rows], default=str)
    return seen


async def _trigger_error(harness: BotHarness) -> str | None:
    async with harness.store.transaction() as tx:
        row = await tx.fetchone(
            "SELECT last_error FROM outbox WHERE kind = 'paging.trigger' AND failed_at IS NOT NULL"
        )
    return str(row["last_error"]) if row is not None else None


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_a_short_paging_key_is_masked_where_the_bot_writes_it(
    make_harness: HarnessFactory,
    naming_refuser: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    store: str,
) -> None:
    monkeypatch.setenv("PD_SHORT_KEY", SHORT_KEY)
    policy = policy_with(
        paging={"pagerduty": {"routing_key_env": "PD_SHORT_KEY", "events_url": naming_refuser}},
        escalation={
            "P1": [
                {"after": 0, "notify": ["U0ONCALL", "pagerduty"]},
                {"after": 3600, "notify": ["U0LEAD"]},
            ]
        },
    )
    harness = await make_harness(store, policy=policy)
    with caplog.at_level(logging.DEBUG):
        assert "Declared" in await reply(harness, "declare P1 Login fails")
        await until(lambda: _trigger_error(harness), "the refused trigger, recorded")
        await harness.settle()
    error = await _trigger_error(harness)
    assert error is not None and "Invalid routing key '***'" in error, error
    seen = await _stored(harness)
    seen += json.dumps([c.params for c in harness.double.calls], default=str)
    seen += "\n".join(record.getMessage() for record in caplog.records)
    assert SHORT_KEY not in seen
    assert "could not reach PagerDuty: it refused the page (http_400)" in seen  # told, masked
