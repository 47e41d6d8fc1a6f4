"""Alertmanager-shaped payloads and a poster for the alert webhooks (tests and bench)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import aiohttp

TOKEN = "alerts-token-Xq9-ChAtOpS"
ALERTMANAGER_PATH = "/alerts/alertmanager"


def alert(
    name: str,
    service: str,
    *,
    severity: str = "critical",
    status: str = "firing",
    fingerprint: str | None = None,
    starts_at: str = "2026-12-05T04:00:00.123456789Z",
    summary: str = "",
    **labels: str,
) -> dict[str, Any]:
    """One alert as Alertmanager's webhook (version 4) carries it."""
    return {
        "status": status,
        "labels": {"alertname": name, "service": service, "severity": severity, **labels},
        "annotations": {"summary": summary or f"{name} on {service}"},
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-12-05T04:10:00Z",
        "generatorURL": f"http://prometheus.example/graph?g0.expr={name}",
        "fingerprint": fingerprint or _fingerprint(name, service, labels),
    }


def _fingerprint(name: str, service: str, labels: dict[str, str]) -> str:
    text = json.dumps([name, service, sorted(labels.items())])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def webhook(alerts: list[dict[str, Any]], *, status: str | None = None) -> dict[str, Any]:
    """Alertmanager's webhook body around `alerts`."""
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "version": "4",
        "groupKey": '{}:{alertname="x"}',
        "truncatedAlerts": 0,
        "status": status or ("firing" if firing else "resolved"),
        "receiver": "chatops",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example",
        "alerts": alerts,
    }


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: dict[str, Any] | bytes,
    *,
    token: str | None = TOKEN,
) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with session.post(url, data=raw, headers=headers) as response:
        return response.status, await response.json(content_type=None)


def alertmanager_config(bot_port: int, *, max_alerts: int = 0) -> str:
    """A real Alertmanager's configuration: every alert to the bot's webhook on `bot_port`,
    grouped by service, within a fraction of a second (`max_alerts` 0: Alertmanager's
    default, no cut)."""
    return f"""
route:
  receiver: chatops
  group_by: [service]
  group_wait: 200ms
  group_interval: 200ms
  repeat_interval: 1s
receivers:
  - name: chatops
    webhook_configs:
      - url: http://127.0.0.1:{bot_port}/alerts/alertmanager
        send_resolved: true
        max_alerts: {max_alerts}
        http_config:
          authorization: {{type: Bearer, credentials: "{TOKEN}"}}
"""
