"""Grafana and Alertmanager alerting on identical label sets: both compute the fingerprint
from the labels alone, so the two alerts carried one fingerprint and start. Identified by
(fingerprint, starts_at), Grafana's was dropped as a duplicate of Alertmanager's and its
resolution marked Alertmanager's resolved (still firing there). Each monitor's alerts are
now its own: (source, fingerprint, starts_at), migration 0025."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.alerts import intake
from bot.alerts.models import read_alertmanager
from bot.clock import SystemClock
from bot.store import Store, create_store
from tests.alert_helpers import alert, webhook
from tests.e2e.incident_helpers import policy_with

POLICY = policy_with(alerts={"token_env": "T"})
FIRST = "2026-12-05T04:00:00Z"
SECOND = "2026-12-05T05:00:00Z"


@pytest.fixture(params=["sqlite", "postgres"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, migrated_sqlite: Callable[[Path], str]
) -> AsyncIterator[Store]:
    url = (
        migrated_sqlite(tmp_path / "monitors.db")
        if request.param == "sqlite"
        else request.getfixturevalue("migrated_postgres_url")
    )
    store = create_store(url)
    await store.open()
    yield store
    await store.close()


async def _post(store: Store, source: str, **kwargs: Any) -> dict[str, int]:
    """One alert, the same labels and fingerprint whichever monitor sends it."""
    body = webhook([alert("Down", "checkout", fingerprint="f00dfeed", **kwargs)])
    if source == "grafana":
        body["version"] = "1"  # Grafana's contact point
    alerts = read_alertmanager(json.dumps(body).encode(), source=source).alerts
    receipt = await intake.record(store, SystemClock(), POLICY.alerts, source, alerts)
    return dict(receipt.outcomes)


async def _rows(store: Store) -> list[tuple[str, str, str]]:
    async with store.transaction() as tx:
        rows = await tx.fetchall("SELECT source, starts_at, status FROM alerts ORDER BY id")
    return [(r["source"], r["starts_at"][:13], r["status"]) for r in rows]


async def test_identical_labels_from_two_monitors_are_two_alerts(store: Store) -> None:
    assert await _post(store, "alertmanager", starts_at=FIRST) == {"new": 1}
    assert await _post(store, "grafana", starts_at=FIRST) == {"new": 1}
    assert await _post(store, "grafana", starts_at=FIRST) == {"duplicate": 1}  # its resend
    # Grafana's resolution is Grafana's alone: Alertmanager's is still firing.
    assert await _post(store, "grafana", starts_at=FIRST, status="resolved") == {"resolved": 1}
    assert await _rows(store) == [
        ("alertmanager", "2026-12-05T04", "firing"),
        ("grafana", "2026-12-05T04", "resolved"),
    ]
    # A new start ends the earlier occurrence of its own monitor only.
    assert await _post(store, "alertmanager", starts_at=SECOND) == {"new": 1}
    assert await _post(store, "grafana", starts_at=SECOND) == {"new": 1}
    assert await _post(store, "alertmanager", starts_at=SECOND, status="resolved") == {
        "resolved": 1
    }
    assert await _rows(store) == [
        ("alertmanager", "2026-12-05T04", "resolved"),  # superseded by its own second start
        ("grafana", "2026-12-05T04", "resolved"),
        ("alertmanager", "2026-12-05T05", "resolved"),
        ("grafana", "2026-12-05T05", "firing"),
    ]
