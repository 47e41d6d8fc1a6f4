"""0025_alert_source_identity on both stores: alerts recorded before it (identified by
fingerprint and start alone) keep their IDs and rows, a resend of one is still a duplicate,
its resolution still resolves it, and the same labels from another monitor are now an alert
of their own."""

from __future__ import annotations

import json

import pytest

from bot.alerts import intake
from bot.alerts.models import read_alertmanager
from bot.clock import SystemClock
from bot.errors import StoreError
from bot.store import Store, create_store, migrate
from bot.store.migrate import available_migrations
from tests.alert_helpers import alert, webhook
from tests.e2e.incident_helpers import policy_with

_ALERT = (
    "INSERT INTO alerts (fingerprint, starts_at, source, service, name, severity, status,"
    " outcome, labels, annotations, links, received_at, incident_id, told_firing)"
    " VALUES ('f00dfeed', ?, ?, 'checkout', 'Down', 'P1', 'firing', 'declared', '{}', '{}',"
    " '[]', 0, 'INC-1', 1) RETURNING id"
)
_INCIDENT = (
    "INSERT INTO incidents (id, day, seq, title, severity, status, declared_by, declared_at,"
    " updated_at) VALUES ('INC-1', '20261205', 1, 't', 'P1', 'investigating', 'U0BOT', 0, 0)"
)
START = "2026-12-05T04:00:00.123456Z"  # the default start of tests.alert_helpers, as keyed


async def _post(store: Store, source: str, status: str = "firing") -> dict[str, int]:
    body = webhook([alert("Down", "checkout", fingerprint="f00dfeed", status=status)])
    if source == "grafana":
        body["version"] = "1"
    alerts = read_alertmanager(json.dumps(body).encode(), source=source).alerts
    policy = policy_with(alerts={"token_env": "T"})
    return dict((await intake.record(store, SystemClock(), policy.alerts, source, alerts)).outcomes)


async def test_alerts_recorded_before_0025_keep_working(store_url: str) -> None:
    store = create_store(store_url)
    await store.open()
    try:
        await migrate(store, [m for m in available_migrations() if m.version < 25])
        async with store.transaction() as tx:
            await tx.execute(_INCIDENT)
            [before] = await tx.fetchall(_ALERT, (START, "alertmanager"))
        assert "0025_alert_source_identity" in await migrate(store)

        assert await _post(store, "alertmanager") == {"duplicate": 1}  # a resend
        assert await _post(store, "grafana") == {"new": 1}  # the same labels, another monitor
        assert await _post(store, "alertmanager", "resolved") == {"resolved": 1}
        async with store.transaction() as tx:
            rows = await tx.fetchall("SELECT id, source, status, incident_id FROM alerts")
        found = {(r["source"], r["status"], r["incident_id"]) for r in rows}
        assert found == {("alertmanager", "resolved", "INC-1"), ("grafana", "firing", None)}
        assert before["id"] in {r["id"] for r in rows}  # its ID kept (timeline args, batches)
        with pytest.raises(StoreError):  # still one row per monitor's occurrence
            async with store.transaction() as tx:
                await tx.fetchall(_ALERT, (START, "alertmanager"))
    finally:
        await store.close()
