"""An alert joins its service's open incident however many incidents have been declared and
left open since (the read looked at the newest 200 open ones only)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest

from bot.incidents import storage
from bot.incidents.schemas import DeclareIncident
from bot.models import Actor, Incident, Severity, Status
from tests.alert_helpers import TOKEN
from tests.e2e.alert_env import Alerts, alert, alerts_policy, health_url
from tests.e2e.conftest import HarnessFactory

__all__ = ["health_url"]  # the fixture, used here


@pytest.fixture(params=["sqlite", "postgres"])
async def alerts(
    request: pytest.FixtureRequest,
    make_harness: HarnessFactory,
    health_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Alerts]:
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    harness = await make_harness(request.param, policy=alerts_policy(health_url))
    async with aiohttp.ClientSession() as session:
        yield Alerts(harness, session)


async def test_an_alert_joins_its_service_incident_behind_two_hundred_newer_open_ones(
    alerts: Alerts,
) -> None:
    services = alerts.harness.services
    declared = await services.incidents.declare(
        DeclareIncident(severity=Severity.P3, title="Checkout is slow", services=("checkout",)),
        Actor("U0ALICE"),
    )
    later = declared.declared_at + timedelta(minutes=1)
    async with alerts.harness.store.transaction() as tx:
        for seq in range(500, 710):
            await storage.insert(
                tx,
                Incident(
                    id=f"INC-20261127-{seq}",
                    title=f"Other outage {seq}",
                    severity=Severity.P3,
                    status=Status.INVESTIGATING,
                    declared_by="U0BOB",
                    declared_at=later + timedelta(seconds=seq),
                    updated_at=later + timedelta(seconds=seq),
                    services=(f"svc{seq}",),
                ),
                day="20261127",
                seq=seq,
            )
    await alerts.settled()
    status, body = await alerts.send(alert("HighLatency", "checkout", severity="warning"))
    assert (status, body["outcomes"]) == (200, {"new": 1})
    await alerts.settled()
    [row] = await alerts.alert_rows()
    assert (row["outcome"], row["incident_id"]) == ("attached", declared.id)
