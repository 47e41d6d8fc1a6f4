"""A real Alertmanager (tests/monitoring.py) whose webhook has `max_alerts`, in front of the
bot: what it leaves out of a group it counts in `truncatedAlerts`, and what that costs.

Alerts are posted to Alertmanager's own API (no Prometheus): it groups them by service, sorts
a group by its labels and sends the first `max_alerts`. Real time (it groups for 200 ms and
resends every second): marked slow.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from bot import metrics
from tests.alert_helpers import TOKEN, alertmanager_config
from tests.e2e.alert_env import Alerts, alerts_policy, health_url
from tests.e2e.conftest import HarnessFactory
from tests.monitoring import AlertmanagerServer
from tests.servers import ServerUnavailable
from tests.waiting import until

__all__ = ["health_url"]  # the fixture, used here

pytestmark = [pytest.mark.slow]

MAX_ALERTS = 3  # the receiver's max_alerts


@asynccontextmanager
async def _monitored(
    make_harness: HarnessFactory, health_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Alerts, AlertmanagerServer]]:
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    harness = await make_harness("sqlite", policy=alerts_policy(health_url, batch_window=0.2))
    try:
        alertmanager = AlertmanagerServer(
            alertmanager_config(harness.bot.port, max_alerts=MAX_ALERTS)
        ).start()
    except ServerUnavailable as exc:
        pytest.fail(f"cannot start Alertmanager: {exc}", pytrace=False)
    try:
        async with aiohttp.ClientSession() as session:
            yield Alerts(harness, session), alertmanager
    finally:
        alertmanager.stop()


def _pod(pod: str, *, resolved: bool = False) -> dict[str, Any]:
    """An alert of checkout's group as Prometheus gives it to Alertmanager; sorted by labels,
    the group's alerts are in the order of their pods."""
    now = datetime.now(UTC)
    ends = now - timedelta(seconds=1) if resolved else now + timedelta(hours=1)
    return {
        "labels": {"alertname": "Down", "service": "checkout", "severity": "critical", "pod": pod},
        "annotations": {"summary": f"{pod} is down"},
        "startsAt": (now - timedelta(minutes=5)).isoformat(),
        "endsAt": ends.isoformat(),
    }


async def _give(alerts: Alerts, alertmanager: AlertmanagerServer, *items: dict[str, Any]) -> None:
    url = f"{alertmanager.url}/api/v2/alerts"
    async with alerts.session.post(url, json=list(items)) as response:
        assert response.status == 200, await response.text()


def _left_out() -> float:
    return metrics.ALERTS_RECEIVED.labels("alertmanager", "left_out")._value.get()


async def _pods(alerts: Alerts) -> dict[str, str]:
    """Each recorded pod's status."""
    return {
        json.loads(row["labels"])["pod"]: str(row["status"]) for row in await alerts.alert_rows()
    }


async def test_alertmanager_max_alerts_is_read_as_left_out_and_the_incident_opens(
    make_harness: HarnessFactory, health_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group of five under `max_alerts: 3`: Alertmanager sends the first three (by labels)
    and `truncatedAlerts: 2`; the bot records the three, opens the incident, and counts two
    left out on every post (Alertmanager resends the group)."""
    async with _monitored(make_harness, health_url, monkeypatch) as (alerts, alertmanager):
        before = _left_out()
        await _give(alerts, alertmanager, *(_pod(f"p{n}") for n in range(1, 6)))

        async def incident_opened() -> bool:
            await alerts.settled()
            return len(await alerts.incidents()) == 1

        await until(incident_opened, "the incident of the group's first three", timeout=30)
        await until(lambda: _left_out() >= before + 4, "a resend, its two left out", timeout=30)
        assert (_left_out() - before) % 2 == 0  # two a post, never the post refused
        assert await _pods(alerts) == {"p1": "firing", "p2": "firing", "p3": "firing"}
        [incident] = await alerts.incidents()
        assert incident.services == ("checkout",)
        # The card says its count may hold alerts that cleared unseen.
        assert incident.current_status.startswith("Alerts: 3 firing, 0 resolved. "), incident
        assert "left part of the group out" in incident.current_status


async def test_a_resolution_alertmanager_leaves_out_never_reaches_the_bot(
    make_harness: HarnessFactory, health_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The limit README states (Alerts in, max_alerts): a group past `max_alerts` whose
    membership shifts. p3 was taken firing; p0 fires (sorting before it) as p3 resolves, so
    the post carries p0, p1 and p2, and p3's resolution is past the cut. Alertmanager counts
    the post as delivering it and drops the resolved p3 from the group: no later post names
    it, and the bot keeps it firing. The whole group resolves and p3 is still firing, so the
    incident never hears "Every alert has cleared" (nor resolves by resolve_when_clear).
    Pinned so that a change in Alertmanager shows. The bot does not infer a resolution from
    an alert missing in a post (Alertmanager leaves out the alerts its silences hold, too:
    one still firing would be taken as cleared); its card says the count may be high."""
    async with _monitored(make_harness, health_url, monkeypatch) as (alerts, alertmanager):
        await _give(alerts, alertmanager, *(_pod(f"p{n}") for n in range(1, 6)))

        async def recorded(expected: dict[str, str]) -> bool:
            await alerts.settled()
            return await _pods(alerts) == expected

        firing = {"p1": "firing", "p2": "firing", "p3": "firing"}
        await until(lambda: recorded(firing), "the first three, firing", timeout=30)
        await _give(alerts, alertmanager, _pod("p0"), _pod("p3", resolved=True))
        shifted = firing | {"p0": "firing"}
        await until(lambda: recorded(shifted), "p0, taken in p3's place", timeout=30)
        # Every alert resolves: Alertmanager sends p0, p1 and p2 resolved (p4 and p5, never
        # taken, left out again), then forgets the group.
        await _give(alerts, alertmanager, *(_pod(f"p{n}", resolved=True) for n in (0, 1, 2, 4, 5)))
        resolved = {"p0": "resolved", "p1": "resolved", "p2": "resolved", "p3": "firing"}
        await until(lambda: recorded(resolved), "the group resolved but for p3", timeout=30)
        [incident] = await alerts.incidents()
        timeline = await alerts.harness.services.incidents.timeline(incident.id)
        assert "alerts_cleared" not in [event.kind for event in timeline]
        status = (await alerts.harness.services.incidents.get(incident.id)).current_status
        assert status.startswith("Alerts: 1 firing, 3 resolved. "), status
        assert "some of these may have cleared" in status
        assert not alertmanager.alerts()  # nothing of the group is active in Alertmanager
