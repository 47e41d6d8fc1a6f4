"""The paging services' webhooks: POST /paging/pagerduty and POST /paging/opsgenie.

Beside /slack/events, which checks Slack's signature: these check their provider's own
(bot.paging.webhooks), on the raw bytes, before anything reads them. A provider with no
webhook secret configured has no endpoint (404). Unsigned or badly signed: 401 and nothing
recorded. Signed but unreadable: 400. The store down: 503, so the provider delivers again.
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.errors import StoreUnavailable
from bot.logs import outside
from bot.paging.service import PagingService
from bot.paging.webhooks import (
    WebhookRefused,
    opsgenie_secret_valid,
    pagerduty_signature_valid,
    read_opsgenie,
    read_pagerduty,
)
from bot.policy.paging import OPSGENIE, PAGERDUTY

log = logging.getLogger(__name__)

PAGERDUTY_PATH = "/paging/pagerduty"
OPSGENIE_PATH = "/paging/opsgenie"


def _answer(status: int, **body: object) -> web.Response:
    return web.json_response(body, status=status)


def paging_routes(paging: PagingService) -> list[web.RouteDef]:
    """The webhook routes, to add to the bot's web application."""

    async def receive(request: web.Request, provider: str) -> web.Response:
        secret = paging.webhook_secret(provider)
        if secret is None:
            return _answer(404, error=f"no webhook is configured for {provider}")
        raw = await request.read()
        if provider == PAGERDUTY:
            valid = pagerduty_signature_valid(raw, request.headers, secret)
        else:
            valid = opsgenie_secret_valid(request.headers, secret)
        if not valid:
            log.warning("refused a %s webhook: bad or missing signature", provider)
            return _answer(401, error="invalid signature")
        try:
            ack = read_pagerduty(raw) if provider == PAGERDUTY else read_opsgenie(raw)
        except WebhookRefused as exc:
            log.warning("refused a signed %s webhook: %s", provider, outside(exc))
            return _answer(400, error=str(exc))
        if ack is None:
            return _answer(200, ok=True, outcome="ignored: not an acknowledgement")
        try:
            outcome = await paging.provider_acknowledged(ack)
        except StoreUnavailable as exc:
            log.warning("%s webhook: store unavailable: %s", provider, exc)
            return _answer(503, error="store unavailable, deliver again later")
        # The key is the payload's: clipped and escaped (it was 100,000 characters once).
        log.info("%s webhook for %s: %s", provider, outside(ack.incident_id), outcome)
        return _answer(200, ok=True, outcome=outcome)

    async def pagerduty(request: web.Request) -> web.Response:
        return await receive(request, PAGERDUTY)

    async def opsgenie(request: web.Request) -> web.Response:
        return await receive(request, OPSGENIE)

    return [web.post(PAGERDUTY_PATH, pagerduty), web.post(OPSGENIE_PATH, opsgenie)]
