"""HTTP mode: POST /slack/events for Slack; /livez, /readyz, /healthz and /metrics; the
paging services' webhooks (bot.paging.routes) and the monitors' alerts (bot.alerts.routes)
when they are configured; and the public status page (bot.status.routes).

The signature is checked on the raw body first, so bytes from anyone but Slack get a 401
whatever they hold (garbage, non-UTF-8, a form whose `payload` is not JSON) and are never
parsed. A signed body that still cannot be read as a Slack payload gets a 400.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bot import metrics
from bot.alerts.routes import alert_routes
from bot.errors import ChatOpsError
from bot.paging.routes import paging_routes
from bot.redact import redact_text
from bot.services import Services
from bot.slack.acks import AckGate, PromptAck, dispatch
from bot.slack.middleware import malformed
from bot.slack.verification import signature_problem
from bot.status.routes import status_routes

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
PROBE_TIMEOUT = 5.0  # each dependency's answer, asked together (the store pool gives up after 3 s)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def build_web_app(
    app: AsyncApp,
    services: Services,
    *,
    signing_secret: str,
    slack_check: Callable[[], Awaitable[None]] | None = None,
    gate: AckGate | None = None,
) -> web.Application:
    """The HTTP side: Slack's events, the probes (/livez, /readyz, /healthz) and /metrics.

    `slack_check` raises a ChatOpsError when Slack refuses the bot's token (readiness);
    `gate` holds the acked listeners' work, for a stop to wait for it."""

    gate = gate or AckGate()

    async def slack_events(request: web.Request) -> web.StreamResponse:
        with gate.answering():
            ack = PromptAck(gate)
            response = await _slack_answer(request, ack)
            # Written here, inside the gate: listeners' post-ack work waits for this. A client
            # gone by now is aiohttp's to notice, as when it writes the answer itself.
            with contextlib.suppress(ConnectionError):
                await response.prepare(request)
                await response.write_eof()
                ack.written = True
        return response

    async def _slack_answer(request: web.Request, ack: PromptAck) -> web.Response:
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
        except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError) as exc:
            # Signed, so from Slack (or someone holding the secret), but not a payload
            # (RecursionError: JSON nested thousands deep).
            log.warning("refused a signed request that is not a Slack payload: %s", exc)
            return _error(400, "the body is not a Slack payload")
        # Checked here too, not only in the middleware: Bolt reads `actions[0]` for every
        # middleware before running it.
        problem = malformed(bolt_request.body, bolt_request.context.user_id)
        if problem is not None:
            log.warning("refused a malformed Slack request: %s", problem)
            return _error(400, f"malformed request: {problem}")
        # The listener's ack is the answer, written the moment it acks (bot.slack.acks).
        return await to_aiohttp_response(await dispatch(app, bolt_request, ack))

    async def probe(name: str, check: Callable[[], Awaitable[None]]) -> str:
        """ "ok", or what is wrong with one dependency within its own PROBE_TIMEOUT."""
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                await check()
        except (ChatOpsError, TimeoutError) as exc:
            if name == "store":
                metrics.STORE_ERRORS.inc()
            return redact_text(str(exc)) or f"no answer within {PROBE_TIMEOUT:g} s"
        return "ok"

    async def probe_all(with_slack: bool) -> web.Response:
        probes: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("store", services.store.ping),
            ("coordinator", services.coordinator.ping),
        ]
        if with_slack and slack_check is not None:
            probes.append(("slack", slack_check))
        # All at once: asked in turn, the bounds added up (a hung Redis and a hung Slack:
        # 7 s; up to 15 s), past a monitor's or a probe's timeout, where 5 s was meant.
        answers = await asyncio.gather(*(probe(name, check) for name, check in probes))
        checks = {name: answer for (name, _), answer in zip(probes, answers, strict=True)}
        if with_slack:
            # Whether this process hears the other replicas (Redis pub/sub): a listener that
            # lost Redis served a withdrawn update for a whole refresh while all else was ok.
            checks["replicas"] = services.status_push.health()
        healthy = all(value == "ok" for value in checks.values())
        down = [name for name, value in checks.items() if value != "ok"]
        body = {"ok": healthy, **checks, **({"down": down} if down else {})}
        return web.json_response(body, status=200 if healthy else 503)

    async def healthz(request: web.Request) -> web.Response:
        return await probe_all(with_slack=False)

    async def readyz(request: web.Request) -> web.Response:
        """Ready to take traffic: the store, the coordinator and Slack's auth each answer,
        and this process hears the other replicas."""
        return await probe_all(with_slack=True)

    async def livez(request: web.Request) -> web.Response:
        """Alive: the event loop runs this handler (a blocked loop never answers)."""
        return web.json_response({"ok": True})

    async def metrics_page(request: web.Request) -> web.Response:
        # Bounded: a hung store must not cost the scrape (that would read as the bot down).
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                pending, oldest = await services.dispatcher.pending_stats()
                overdue = await services.reminders.overdue_seconds()
        except (ChatOpsError, TimeoutError):
            metrics.STORE_ERRORS.inc()
            metrics.STORE_UP.set(0)
        else:
            metrics.STORE_UP.set(1)
            metrics.OUTBOX_PENDING.set(pending)
            metrics.OUTBOX_OLDEST_SECONDS.set(oldest)
            metrics.REMINDERS_OVERDUE_SECONDS.set(overdue)
        payload, content_type = metrics.exposition()
        return web.Response(body=payload, headers={"Content-Type": content_type})

    web_app = web.Application()
    web_app.router.add_post(EVENTS_PATH, slack_events)
    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/livez", livez)
    web_app.router.add_get("/readyz", readyz)
    web_app.router.add_get("/metrics", metrics_page)
    if services.paging is not None:
        # PagerDuty and Opsgenie webhooks: verified with their own secrets, not Slack's.
        web_app.add_routes(paging_routes(services.paging))
    # The public status page: read-only, served from memory (bot.status.page).
    web_app.add_routes(status_routes(services.status_page))
    if services.alerts is not None:
        # Monitors' webhooks (bot.alerts.routes): a bearer token of their own, not Slack's.
        web_app.add_routes(alert_routes(services.alerts, services.alerts_token))
    return web_app
