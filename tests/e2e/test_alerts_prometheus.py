"""Real Prometheus and Alertmanager (Debian's packages, tests/monitoring.py) in front of the
bot: Prometheus scrapes a metric this test serves, a rule fires, Alertmanager posts to
/alerts/alertmanager with its bearer token, and the bot opens a diagnosed incident. A resend
changes nothing; a second alert of the service joins; the metric recovers and the resolution
is noted; a wrong token is refused.

Real time (Prometheus scrapes the shop every second and evaluates every 200 ms; Alertmanager
groups for 200 ms and resends every second): few tests, marked slow. (Prometheus itself sends
no alert in its first 5 s: its discovery of Alertmanager is throttled to every 5 s, no flag
changes it.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Self

import aiohttp
import pytest

from bot import metrics
from bot.models import Incident
from tests.alert_helpers import TOKEN, alert, alertmanager_config, post, webhook
from tests.e2e.alert_env import Alerts
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import policy_with, posts
from tests.monitoring import (
    ALERTING_FROM_FILE,
    AlertmanagerServer,
    PrometheusServer,
    serving_text,
)
from tests.servers import ServerUnavailable
from tests.waiting import until

pytestmark = [pytest.mark.slow]

RULES = """
groups:
  - name: shop
    interval: 200ms
    rules:
      - alert: HighErrorRate
        expr: shop_error_ratio > 0.05
        for: 0s
        labels: {severity: critical}
        annotations: {summary: "{{ $labels.service }} errors at {{ $value }}"}
      - alert: HighLatency
        expr: shop_latency_seconds > 1
        for: 0s
        labels: {severity: warning}
        annotations: {summary: "{{ $labels.service }} p99 latency {{ $value }} s"}
"""
RULE_FILES = {"rules.yml": RULES}


class Shop:
    """The metrics Prometheus scrapes (and the health check the diagnosis reads)."""

    def __init__(self) -> None:
        self.error_ratio = 0.0
        self.latency = 0.2
        self.port = 0

    def metrics(self) -> str:
        return (
            "# TYPE shop_error_ratio gauge\n"
            f'shop_error_ratio{{service="checkout"}} {self.error_ratio}\n'
            "# TYPE shop_latency_seconds gauge\n"
            f'shop_latency_seconds{{service="checkout"}} {self.latency}\n'
        )

    @contextmanager
    def serving(self) -> Iterator[Self]:
        """Served from a thread (see serving_text): a stalled scrape would resolve the alerts."""
        with serving_text({"/metrics": self.metrics, "/health": lambda: '{"ok": true}'}) as port:
            self.port = port
            yield self


def prometheus_config(shop_port: int) -> str:
    """Alerts go to the Alertmanager given to PrometheusServer.send_alerts_to."""
    return f"""
global: {{scrape_interval: 200ms, evaluation_interval: 200ms}}
rule_files: [rules.yml]
{ALERTING_FROM_FILE}
scrape_configs:
  - job_name: shop
    # A scrape times out after its interval: 1 s, not the global 200 ms, which a busy machine
    # overran (the shop read as down for a scrape resolved its alerts, then raised them anew).
    scrape_interval: 1s
    static_configs: [{{targets: ["127.0.0.1:{shop_port}"]}}]
"""


async def _start(server: Any, starting: Awaitable[Any] | None = None) -> Any:
    """`server` started (`starting`: its start already under way)."""
    try:
        return await (starting or asyncio.to_thread(server.start))
    except ServerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
async def shop() -> AsyncIterator[Shop]:
    with Shop().serving() as shop:
        yield shop


@asynccontextmanager
async def _monitored(
    make_harness: HarnessFactory, store: str, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Alerts]:
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    policy = policy_with(
        services={"checkout": {"http": [{"url": f"http://127.0.0.1:{shop.port}/health"}]}},
        alerts={"token_env": "ALERTS_TOKEN", "batch_window": 0.5},
    )
    # Prometheus first, while the bot starts: it sends no alert in its first 5 s (see above).
    prometheus = PrometheusServer(prometheus_config(shop.port), RULE_FILES)
    # In a thread from now on: the harness's set-up may not yield to the loop for a while.
    starting = asyncio.get_running_loop().run_in_executor(None, prometheus.start)
    try:
        harness = await make_harness(store, policy=policy)
        await _start(prometheus, starting)
        alertmanager = await _start(AlertmanagerServer(alertmanager_config(harness.bot.port)))
        prometheus.send_alerts_to(alertmanager)
    except BaseException:
        await asyncio.gather(starting, return_exceptions=True)
        await asyncio.to_thread(prometheus.stop)
        raise
    try:
        async with aiohttp.ClientSession() as session:
            yield Alerts(harness, session)
    finally:
        await asyncio.to_thread(prometheus.stop)
        await asyncio.to_thread(alertmanager.stop)


def _received(outcome: str) -> float:
    return metrics.ALERTS_RECEIVED.labels("alertmanager", outcome)._value.get()


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_prometheus_rule_to_diagnosed_incident_and_back(
    make_harness: HarnessFactory, shop: Shop, monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    async with _monitored(make_harness, store, shop, monkeypatch) as alerts:
        duplicates_before = _received("duplicate")
        shop.error_ratio = 0.12  # crosses the rule
        await until(lambda: _one_incident(alerts), "the incident the alert opens", timeout=60)
        incident = await _incident(alerts)
        assert incident.severity == "P1" and incident.services == ("checkout",)
        assert incident.title == "checkout: checkout errors at 0.12"
        await until(lambda: _room_has(alerts, "Diagnosis of checkout"), "the diagnosis", 30)
        incident = await _incident(alerts)
        assert incident.channel_id is not None  # the war room
        # Alertmanager resends the group every second: nothing changes.
        await until(lambda: _received("duplicate") > duplicates_before, "a resend", timeout=30)
        assert len(await alerts.incidents()) == 1 and len(await alerts.alert_rows()) == 1

        shop.latency = 2.5  # a second alert of the same service joins
        await until(lambda: _rows(alerts, 2), "the second alert, decided", timeout=60)
        rows = await alerts.alert_rows()
        assert {r["incident_id"] for r in rows} == {incident.id}
        assert sorted(r["outcome"] for r in rows) == ["attached", "declared"]
        assert len(await alerts.incidents()) == 1

        shop.error_ratio, shop.latency = 0.0, 0.1  # recovers
        await until(lambda: _all_resolved(alerts), "both resolutions", timeout=60)
        await until(lambda: _cleared(alerts, incident), "the all-clear line", timeout=30)
        await until(lambda: _room_has(alerts, "Every alert has cleared"), "the note", 30)
        assert len(await alerts.alert_rows()) == 2  # each alert recorded once

        # A post without the right token is refused, and nothing is recorded.
        status, _ = await post(
            alerts.session, alerts.url(), webhook([alert("X", "checkout")]), token="wrong"
        )
        assert status == 401 and len(await alerts.alert_rows()) == 2


async def _incident(alerts: Alerts) -> Incident:
    [incident] = await alerts.incidents()
    return await alerts.harness.services.incidents.get(incident.id)


async def _one_incident(alerts: Alerts) -> bool:
    return len(await alerts.incidents()) == 1


async def _rows(alerts: Alerts, count: int) -> bool:
    """`count` alerts recorded and decided (each with its incident)."""
    rows = await alerts.alert_rows()
    return len(rows) == count and all(row["incident_id"] for row in rows)


async def _all_resolved(alerts: Alerts) -> bool:
    return all(row["status"] == "resolved" for row in await alerts.alert_rows())


async def _cleared(alerts: Alerts, incident: Incident) -> bool:
    events = await alerts.harness.services.incidents.timeline(incident.id)
    return "alerts_cleared" in [e.kind for e in events]


async def _room_has(alerts: Alerts, text: str) -> bool:
    incident = await _incident(alerts)
    if incident.channel_id is None:
        return False
    return any(
        text in str(c.params.get("text")) for c in posts(alerts.harness, incident.channel_id)
    )
