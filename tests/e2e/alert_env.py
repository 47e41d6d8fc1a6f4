"""Shared by the alerts end-to-end tests: the bot's alert endpoints as a monitor reaches them,
a health endpoint for the catalog's check (the diagnosis), the policy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.models import Incident
from tests.alert_helpers import ALERTMANAGER_PATH, alert, post, webhook
from tests.e2e.incident_helpers import policy_with, posts
from tests.harness import BotHarness
from tests.local_http import serving

__all__ = ["Alerts", "alert", "alerts_policy", "health_url"]


@dataclass
class Alerts:
    harness: BotHarness
    session: aiohttp.ClientSession

    def url(self, path: str = ALERTMANAGER_PATH) -> str:
        return f"http://127.0.0.1:{self.harness.bot.port}{path}"

    async def send(self, *alerts: dict[str, Any], **kwargs: Any) -> tuple[int, Any]:
        return await post(self.session, self.url(), webhook(list(alerts)), **kwargs)

    async def settled(self) -> None:
        """Every recorded alert decided (the worker decides after the 200), every message
        delivered: the outbox alone may drain before the worker has queued anything."""
        assert self.harness.services.alerts is not None
        await self.harness.services.alerts.process_pending()
        await self.harness.settle()

    async def incidents(self) -> list[Incident]:
        return await self.harness.services.incidents.list(open_only=False)

    async def alert_rows(self) -> list[dict[str, Any]]:
        async with self.harness.store.transaction() as tx:
            return await tx.fetchall("SELECT * FROM alerts ORDER BY id")

    def alert_messages(self, channel: str) -> list[str]:
        return [
            str(c.params["text"])
            for c in posts(self.harness, channel)
            if "alert" in str(c.params.get("text", "")) and c.params.get("blocks")
        ]


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


@pytest.fixture
async def health_url() -> AsyncIterator[str]:
    """A health endpoint the catalog's HTTP check reads (the diagnosis)."""
    app = web.Application()
    app.router.add_get("/health", _health)
    async with serving(app) as url:
        yield f"{url}/health"


def alerts_policy(health_url: str, **alerts: Any) -> Any:
    return policy_with(
        services={"checkout": {"http": [{"url": health_url}]}},
        alerts={
            "token_env": "ALERTS_TOKEN",
            "batch_window": 0,
            "alertmanager_url": "http://127.0.0.1:9/",
            "routes": [{"match": {"alertname": "Watchdog"}, "ignore": True}],
            **alerts,
        },
    )
