"""Alerts against two bot processes on one PostgreSQL: Alertmanager notifies both replicas
(two webhook configs, as an HA pair or a retry landing on the other replica would), and a
burst of posts for three services goes to both at once. One incident per service, each alert
recorded once, one diagnosis."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from bot.console.workspace import SlackDouble
from bot.slack.limits import SlackLimits
from bot.store import create_store
from tests.alert_helpers import TOKEN, alert, post, webhook
from tests.e2e.test_alerts_prometheus import RULE_FILES, Shop, _start, prometheus_config, shop
from tests.harness import BOT_TOKEN, PACE_SCALE, openapi_spec
from tests.monitoring import AlertmanagerServer, PrometheusServer
from tests.processes import BotProcess, bot_env, count, outbox_empty
from tests.waiting import until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
__all__ = ["shop"]  # the fixture, used here

POLICY = """\
announce_channel: C0INCIDENTS
severities:
  P0: {ack_within: 1h, resolve_within: 4h, update_every: 1h}
  P1: {ack_within: 1h, resolve_within: 4h, update_every: 1h}
  P2: {ack_within: 1h, resolve_within: 4h, update_every: 1h}
  P3: {ack_within: 1h, resolve_within: 1d}
escalation:
  P1: [{after: 0, notify: [U0ONCALL]}]
services:
  checkout:
    http: [{url: "http://127.0.0.1:SHOP_PORT/health"}]
alerts:
  token_env: ALERTS_TOKEN
  batch_window: 0.5
"""


def alertmanager_config(ports: list[int]) -> str:
    hooks = "\n".join(
        f"""      - url: http://127.0.0.1:{port}/alerts/alertmanager
        send_resolved: true
        http_config: {{authorization: {{type: Bearer, credentials: "{TOKEN}"}}}}"""
        for port in ports
    )
    return f"""
route: {{receiver: chatops, group_by: [service], group_wait: 200ms, group_interval: 200ms,
         repeat_interval: 1s}}
receivers:
  - name: chatops
    webhook_configs:
{hooks}
"""


async def _rows(database_url: str, sql: str) -> list[dict[str, object]]:
    store = create_store(database_url)
    await store.open()
    try:
        async with store.transaction() as tx:
            return await tx.fetchall(sql)
    finally:
        await store.close()


async def test_two_replicas_one_incident_per_service_each_alert_once(
    postgres_url: str, shop: Shop, tmp_path: Path
) -> None:
    double = SlackDouble(
        bot_token=BOT_TOKEN, openapi_spec=openapi_spec(), rate_limits=SlackLimits(scale=PACE_SCALE)
    )
    await double.start()
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY.replace("SHOP_PORT", str(shop.port)))
    env = bot_env(double, postgres_url, policy) | {"ALERTS_TOKEN": TOKEN}
    bots = [BotProcess(name, env, tmp_path) for name in ("a", "b")]
    # Prometheus starts while the bots do: it sends no alert in its first 5 s (its discovery
    # of Alertmanager is throttled to every 5 s).
    prometheus = PrometheusServer(prometheus_config(shop.port), RULE_FILES)
    alertmanager = None
    try:
        await asyncio.gather(_start(prometheus), *(bot.ready() for bot in bots))
        alertmanager = await _start(AlertmanagerServer(alertmanager_config([b.port for b in bots])))
        prometheus.send_alerts_to(alertmanager)
        shop.error_ratio = 0.2  # Prometheus fires; Alertmanager tells both replicas at once

        # Meanwhile a burst for three other services, every post sent to both replicas.
        burst = [
            webhook([alert(f"Alert{n}", service, pod=str(n)) for n in range(10)])
            for service in ("billing", "search", "cart")
        ]
        async with aiohttp.ClientSession() as session:
            answers = await asyncio.gather(
                *(
                    post(session, bot.url + "/alerts/alertmanager", body)
                    for body in burst
                    for bot in bots
                    for _ in range(2)
                )
            )
        assert {status for status, _ in answers} == {200}, answers
        outcomes: dict[str, int] = {}
        for _, body in answers:
            for outcome, number in body["outcomes"].items():
                outcomes[outcome] = outcomes.get(outcome, 0) + number
        # Each alert is recorded once; every other copy of a post (the same replica again, or
        # the other one) is a duplicate.
        assert outcomes == {"new": 30, "duplicate": 90}

        async def all_decided() -> bool:
            rows = await _rows(postgres_url, "SELECT service, incident_id FROM alerts")
            services = {row["service"] for row in rows}
            return "checkout" in services and all(row["incident_id"] for row in rows)

        await until(all_decided, "every alert recorded and decided", timeout=60)
        await until(lambda: count(double, "Diagnosis of checkout") >= 1, "the diagnosis", 30)

        incidents = await _rows(postgres_url, "SELECT id, services FROM incidents ORDER BY id")
        services = sorted(json.loads(str(row["services"]))[0] for row in incidents)
        assert services == ["billing", "cart", "checkout", "search"]  # one incident each
        alerts = await _rows(postgres_url, "SELECT fingerprint, starts_at FROM alerts")
        assert len(alerts) == 31 == len({(a["fingerprint"], a["starts_at"]) for a in alerts})
        decided = await _rows(postgres_url, "SELECT outcome, COUNT(*) AS n FROM alerts GROUP BY 1")
        assert {row["outcome"]: row["n"] for row in decided} == {"declared": 31}
        await until(lambda: outbox_empty(postgres_url), "every message delivered", timeout=60)
        assert count(double, "Diagnosis of checkout") == 1
        assert double.violations == [], double.violations
    finally:
        await asyncio.to_thread(prometheus.stop)
        if alertmanager is not None:
            await asyncio.to_thread(alertmanager.stop)
        for bot in bots:
            await bot.stop()
        await double.stop()
