"""HTTP mode: POST /slack/events for Slack, GET /healthz for probes."""

from __future__ import annotations

import json

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot.errors import ChatOpsError
from bot.services import Services

EVENTS_PATH = "/slack/events"


def build_web_app(app: AsyncApp, services: Services) -> web.Application:
    async def slack_events(request: web.Request) -> web.Response:
        bolt_request = await to_bolt_request(request)
        bolt_response = await app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    async def healthz(request: web.Request) -> web.Response:
        checks: dict[str, str] = {}
        for name, probe in (
            ("store", services.store.ping),
            ("coordinator", services.coordinator.ping),
        ):
            try:
                await probe()
                checks[name] = "ok"
            except ChatOpsError as exc:
                checks[name] = str(exc)
        healthy = all(value == "ok" for value in checks.values())
        return web.Response(
            status=200 if healthy else 503,
            text=json.dumps({"ok": healthy, **checks}),
            content_type="application/json",
        )

    web_app = web.Application()
    web_app.router.add_post(EVENTS_PATH, slack_events)
    web_app.router.add_get("/healthz", healthz)
    return web_app
