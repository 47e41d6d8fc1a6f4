"""Bolt middleware: request identity, retry de-duplication, the acting user."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.coordination import Coordinator
from bot.errors import CoordinatorUnavailable
from bot.models import Actor

log = logging.getLogger(__name__)

# Slack retries for up to about an hour; remember requests a little longer than that.
SEEN_TTL = 2 * 3600


def request_id(req: AsyncBoltRequest) -> str:
    """A stable ID for a Slack request: the same for its retries and redeliveries."""
    body: dict[str, Any] = req.body or {}
    event_id = body.get("event_id")
    if event_id:
        return f"event:{event_id}"
    payload = body
    if isinstance(body.get("payload"), str):
        payload = json.loads(body["payload"])
    trigger_id = payload.get("trigger_id") if isinstance(payload, dict) else None
    if trigger_id:
        # One trigger_id per user gesture: a second click is a new gesture, a retry is not.
        actions = payload.get("actions") or [{}]
        return f"trigger:{trigger_id}:{actions[0].get('action_ts', '')}"
    return "body:" + hashlib.sha256(req.raw_body.encode()).hexdigest()[:32]


def _is_retry(req: AsyncBoltRequest) -> bool:
    return bool(req.headers.get("x-slack-retry-num"))


def install(app: AsyncApp, coordinator: Coordinator) -> None:
    """Add the bot's global middleware to `app` (after Bolt's signature check)."""

    @app.middleware
    async def identify(
        req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        rid = request_id(req)
        req.context["request_id"] = rid
        user_id = req.context.user_id
        if user_id:
            req.context["actor"] = Actor(user_id=user_id, user_name=_user_name(req.body))
        try:
            first = await coordinator.claim("req:" + rid, SEEN_TTL)
        except CoordinatorUnavailable as exc:
            # The store's own de-duplication still stops a second change.
            log.warning("de-duplication skipped, coordinator down: %s", exc)
            first = True
        if not first:
            log.info("dropping duplicate Slack request %s (retry=%s)", rid, _is_retry(req))
            return BoltResponse(status=200, body="")
        return await next()


def _user_name(body: dict[str, Any] | None) -> str:
    if not body:
        return ""
    if "user_name" in body:
        return str(body["user_name"])
    user = body.get("user")
    if isinstance(user, dict):
        return str(user.get("username") or user.get("name") or "")
    return ""
