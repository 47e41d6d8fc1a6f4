"""HTTP mode: POST /slack/events for Slack, GET /healthz for probes, and the paging
services' webhooks (bot.paging.routes) when they are configured.

The signature is checked on the raw body first, so bytes from anyone but Slack get a 401
whatever they hold (garbage, non-UTF-8, a form whose `payload` is not JSON) and are never
parsed. A signed body that still cannot be read as a Slack payload gets a 400.
"""

from __future__ import annotations

import json
import logging
import time

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.errors import ChatOpsError
from bot.paging.routes import paging_routes
from bot.services import Services
from bot.slack.middleware import malformed
from bot.slack.verification import signature_problem

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def build_web_app(app: AsyncApp, services: Services, *, signing_secret: str) -> web.Application:
    async def slack_events(request: web.Request) -> web.Response:
        raw = await request.read()
        problem = signature_problem(raw, request.headers, signing_secret, time.time())
        if problem is not None:
            log.warning("refused a request to %s: %s", EVENTS_PATH, problem)
            return _error(401, "invalid request")
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            log.warning("refused a signed request: the body is not UTF-8")
            return _error(400, "the body is not UTF-8")
        try:
            # Bolt reads JSON, or a form whose `payload` field is JSON, as it builds this.
            bolt_request = AsyncBoltRequest(
                body=body, query=request.query_string, headers=dict(request.headers)
            )
            if not isinstance(bolt_request.body, dict):
                raise TypeError(f"a JSON {type(bolt_request.body).__name__}, not an object")
        except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
            # Signed, so from Slack (or someone holding the secret), but not a payload.
            log.warning("refused a signed request that is not a Slack payload: %s", exc)
            return _error(400, "the body is not a Slack payload")
        # Checked here too, not only in the middleware: Bolt reads `actions[0]` for every
        # middleware before running it.
        problem = malformed(bolt_request.body, bolt_request.context.user_id)
        if problem is not None:
            log.warning("refused a malformed Slack request: %s", problem)
            return _error(400, f"malformed request: {problem}")
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
    if services.paging is not None:
        # PagerDuty and Opsgenie webhooks: verified with their own secrets, not Slack's.
        web_app.add_routes(paging_routes(services.paging))
    return web_app
