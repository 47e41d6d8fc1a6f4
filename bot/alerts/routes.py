"""The alert webhooks: POST /alerts/alertmanager, /alerts/grafana and /alerts/generic.

Each is authenticated by `Authorization: Bearer <token>` (what Alertmanager's
`http_config.authorization` sends), the token read from the environment variable the policy
names, compared in constant time before the body is read: wrong or missing, 401 and nothing
recorded. Bodies are bounded (1 MiB: 413 past it) and validated: unreadable, 400 saying what
is wrong. An Alertmanager or Grafana group past MAX_ALERTS is taken in part, the rest said
left out (they cannot split a group; a generic sender can, and gets a 400). The store
down: 503, so the monitor delivers again (a resend changes nothing twice).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from bot import metrics
from bot.alerts.models import (
    MAX_ALERTS,
    MAX_BODY_BYTES,
    AlertsRefused,
    Posted,
    read_alertmanager,
    read_generic,
)
from bot.alerts.service import AlertService
from bot.errors import StoreBusy, StoreUnavailable

log = logging.getLogger(__name__)

PATHS = {
    "alertmanager": "/alerts/alertmanager",
    "grafana": "/alerts/grafana",
    "generic": "/alerts/generic",
}


def _answer(status: int, **body: object) -> web.Response:
    return web.json_response(body, status=status)


def bearer_valid(headers: Mapping[str, str], token: str) -> bool:
    """True when `Authorization: Bearer <token>` is given (constant-time comparison)."""
    scheme, _, given = (headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    # "replace": a header's undecodable bytes arrive as surrogates, which strict UTF-8 refuses.
    return hmac.compare_digest(given.strip().encode("utf-8", "replace"), token.encode())


async def _read_bounded(request: web.Request) -> bytes | None:
    """The whole body; None once it passes MAX_BODY_BYTES (a chunked body has no
    Content-Length to refuse it by). The server (bot.serving) may have read it already,
    within its own deadline and limit: aiohttp then hands back those bytes."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return None
    return None if len(raw) > MAX_BODY_BYTES else raw


def alert_routes(alerts: AlertService, token: str | None) -> list[web.RouteDef]:
    """The webhook routes, to add to the bot's web application, checking the bearer `token`."""
    config = alerts.config

    def readers() -> dict[str, Callable[[bytes], Posted]]:
        return {
            "alertmanager": read_alertmanager,
            "grafana": lambda raw: read_alertmanager(raw, source="grafana"),
            # A generic sender can split its own posts: past MAX_ALERTS it is told so (400).
            "generic": lambda raw: Posted(
                read_generic(
                    raw, service_label=config.service_label, severity_label=config.severity_label
                )
            ),
        }

    async def receive(request: web.Request, source: str) -> web.Response:
        # Read, trimmed and registered for redaction once, at start-up
        # (bot.services.alerts_token_from).
        if not token:
            return _answer(503, error=f"the alerts token ({config.token_env}) is not set")
        if not bearer_valid(request.headers, token):
            metrics.ALERTS_RECEIVED.labels(source, "unauthorized").inc()
            log.warning("refused an alert post to %s: bad or missing bearer token", source)
            return _answer(401, error="invalid or missing bearer token")
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return _answer(413, error=f"the body is over {MAX_BODY_BYTES} bytes")
        raw = await _read_bounded(request)
        if raw is None:
            return _answer(413, error=f"the body is over {MAX_BODY_BYTES} bytes")
        try:
            posted = readers()[source](raw)
        except AlertsRefused as exc:
            metrics.ALERTS_RECEIVED.labels(source, "refused").inc()
            log.warning("refused an alert post to %s: %s", source, exc)
            return _answer(400, error=str(exc))
        try:
            receipt = await alerts.receive(source, posted.alerts, left_out=posted.left_out)
        except (StoreUnavailable, StoreBusy) as exc:
            log.warning("alerts from %s not recorded: %s", source, exc)
            return _answer(503, error="store unavailable, deliver again later")
        log.info("alerts from %s: %s", source, dict(receipt.outcomes))
        if posted.left_out:
            metrics.ALERTS_RECEIVED.labels(source, "left_out").inc(posted.left_out)
            log.warning(
                "alerts from %s: %d more of the group not taken (the sender's max_alerts, or"
                " past %d a post): incidents count only the %d taken",
                source,
                posted.left_out,
                MAX_ALERTS,
                len(posted.alerts),
            )
            return _answer(200, ok=True, **receipt.as_json(), left_out=posted.left_out)
        return _answer(200, ok=True, **receipt.as_json())

    def handler(source: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.Response:
            return await receive(request, source)

        return handle

    return [web.post(path, handler(source)) for source, path in PATHS.items()]
