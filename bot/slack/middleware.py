"""Bolt middleware: request identity, retry de-duplication, the acting user.

A request reaches here signed by Slack (checked on the raw bytes in bot.server) or over Socket
Mode, yet its payload may still be malformed: no user, an `actions` list that is empty, a view
without a type. Those are refused here with a 400 that says what is missing, before any
listener can fail on them (a listener that fails before its ack leaves Slack waiting 3 s).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot import logs, metrics
from bot.coordination import Coordinator
from bot.errors import CoordinatorUnavailable
from bot.models import Actor
from bot.slack.auth import SlackAuth
from bot.slack_ids import is_user_id

log = logging.getLogger(__name__)

# Slack retries for up to about an hour; remember requests a little longer than that.
SEEN_TTL = 2 * 3600
# What a request ID built from the payload may hold; anything else is hashed.
_PLAIN_ID = re.compile(r"^[\w.:-]{1,300}$")
_VIEW_TYPES = {"modal", "home"}
_NAME_MAX = 80
# Payload types that need no acting user: Bolt answers them itself, or they are events.
_NO_USER_NEEDED = {"url_verification", "ssl_check"}


def request_id(req: AsyncBoltRequest) -> str:
    """A stable ID for a Slack request: the same for its retries and redeliveries."""
    body = _payload(req.body)
    rid = ""
    event_id = body.get("event_id")
    if isinstance(event_id, str) and event_id:
        rid = f"event:{event_id}"
    elif isinstance(trigger_id := body.get("trigger_id"), str) and trigger_id:
        # One trigger_id per user gesture: a second click is a new gesture, a retry is not.
        action_ts = _first_action(body).get("action_ts", "")
        rid = f"trigger:{trigger_id}:{action_ts}"
    if rid and _PLAIN_ID.match(rid):
        return rid
    return "body:" + hashlib.sha256((rid or req.raw_body).encode()).hexdigest()[:32]


def _payload(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        return {}
    inner = body.get("payload")
    if isinstance(inner, str):  # not unwrapped yet (Bolt unwraps HTTP form payloads)
        try:
            parsed = json.loads(inner)
        except (ValueError, RecursionError):
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return body


def _first_action(body: dict[str, Any]) -> dict[str, Any]:
    actions = body.get("actions")
    if isinstance(actions, list) and actions and isinstance(actions[0], dict):
        return actions[0]
    return {}


def _not_unicode(value: Any) -> bool:
    """True when a string in `value` holds a lone surrogate: JSON may write one (`"\\ud800"`),
    Slack never does, and no store, hash or log can encode it as UTF-8."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def malformed(body: dict[str, Any], user_id: str | None) -> str | None:
    """What makes a signed payload unusable, in a few words; None when it is usable."""
    if _not_unicode(body):
        return "text that is not Unicode (a lone surrogate)"
    kind = body.get("type")
    if kind == "block_actions":
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions:
            return "block_actions without actions"
        if not all(isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in actions):
            return "an action without an action_id"
    if kind in ("view_submission", "view_closed"):
        view = body.get("view")
        if not isinstance(view, dict) or view.get("type") not in _VIEW_TYPES:
            return "a view without a type"
    if kind in _NO_USER_NEEDED or kind == "event_callback":
        return None
    if not user_id:
        return "no user ID"
    if not is_user_id(user_id):
        return "a user ID that is not one"
    return None


def _refuse(problem: str) -> BoltResponse:
    return BoltResponse(
        status=400,
        body=json.dumps({"error": f"malformed request: {problem}"}),
        headers={"content-type": "application/json"},
    )


def _is_retry(req: AsyncBoltRequest) -> bool:
    return bool(req.headers.get("x-slack-retry-num"))


# What Bolt hands a middleware: calling it runs the rest (and answers with the response).
Next = Callable[[], Awaitable[BoltResponse | None]]


async def is_external(body: dict[str, Any], auth: SlackAuth | None) -> bool:
    """Whether the user who clicked or submitted belongs to another organisation than the
    bot's (a Slack Connect channel shares its cards with them): their `user.team_id` is not
    the bot's workspace, and the payload is not from another workspace of the bot's own
    Enterprise Grid organisation. False when that cannot be told (no team in the payload,
    as in slash commands, or auth.test unanswered)."""
    user = body.get("user")
    user_team = user.get("team_id") if isinstance(user, dict) else None
    if auth is None or not isinstance(user_team, str) or not user_team:
        return False
    identity = await auth.identity_soon()
    if not identity.get("team_id") or user_team == identity.get("team_id"):
        return False
    enterprise = body.get("enterprise")
    organisation = enterprise.get("id") if isinstance(enterprise, dict) else None
    home = identity.get("enterprise_id")
    return not (home and organisation == home)


def install(app: AsyncApp, coordinator: Coordinator, auth: SlackAuth | None = None) -> None:
    """Add the bot's global middleware to `app` (after Bolt's signature check); with `auth`,
    users of another organisation are marked `Actor.external`."""

    @app.middleware
    async def measure(
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse | None]],
    ) -> BoltResponse | None:
        # Bolt returns from next() once the listener has acked (or the request is refused).
        kind = request_kind(_payload(req.body))
        started = time.perf_counter()
        try:
            response = await next()
        except Exception:
            metrics.REQUESTS.labels(kind, "error").inc()
            raise
        metrics.ACK_SECONDS.labels(kind).observe(time.perf_counter() - started)
        outcome = req.context.get("outcome") or (
            "ok" if response is None or response.status == 200 else f"http_{response.status}"
        )
        metrics.REQUESTS.labels(kind, outcome).inc()
        return response

    @app.middleware
    async def identify(
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse | None]],
    ) -> BoltResponse | None:
        body = _payload(req.body)
        user_id = req.context.user_id
        problem = malformed(body, user_id)
        if problem is not None:
            log.warning("refused a malformed Slack request: %s", problem)
            req.context["outcome"] = "malformed"
            return _refuse(problem)
        if body.get("type") == "event_callback" and not (user_id and is_user_id(user_id)):
            # Every event the bot acts on is someone's doing; the rest are acknowledged
            # (or Slack would deliver them again) and left alone.
            req.context["outcome"] = "ignored"
            return BoltResponse(status=200, body="")
        rid = request_id(req)
        req.context["request_id"] = rid
        if user_id:
            external = await is_external(body, auth)
            req.context["actor"] = Actor(
                user_id=user_id, user_name=_user_name(body), external=external
            )
        try:
            first = await coordinator.claim("req:" + rid, SEEN_TTL)
        except CoordinatorUnavailable as exc:
            # The store's own de-duplication still stops a second change.
            log.warning("de-duplication skipped, coordinator down: %s", exc)
            first = True
        if not first:
            log.info("dropping duplicate Slack request %s (retry=%s)", rid, _is_retry(req))
            req.context["outcome"] = "duplicate"
            return BoltResponse(status=200, body="")
        with logs.bound(request=rid, user=user_id):
            return await next()


def request_kind(body: dict[str, Any]) -> str:
    """What a request is, for metrics: command, block_actions, view_submission, event..."""
    if body.get("command"):
        return "command"
    if body.get("type") == "event_callback":
        return "event"
    kind = str(body.get("type") or "unknown")
    return kind if _PLAIN_ID.match(kind) and len(kind) <= 40 else "unknown"


def _user_name(body: dict[str, Any]) -> str:
    name: object = body.get("user_name", "")
    user = body.get("user")
    if not name and isinstance(user, dict):
        name = user.get("username") or user.get("name") or ""
    return str(name)[:_NAME_MAX] if isinstance(name, str) else ""
