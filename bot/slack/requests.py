"""Build and send Slack's HTTP requests into the app, byte for byte as Slack sends them.

Slash commands and interactions arrive form-encoded (interactions as `payload=<json>`), Events
API callbacks as JSON; all are signed with the app's signing secret (v0 HMAC-SHA256 over
`v0:{timestamp}:{body}`). Used by e2e tests, the benchmark and the offline console. Signing
and sending live in bot.slack.signed_requests (their names are importable from here too).

    body = slash_command_body(text="declare sev1 db down", response_url=slack.new_response_url())
    async with SlackRequestSender(app_url, signing_secret) as sender:
        status, answer = await sender.send(*body)
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any, ParamSpec
from urllib.parse import urlencode

from bot.slack.signed_requests import FORM as FORM
from bot.slack.signed_requests import JSON as JSON
from bot.slack.signed_requests import AppResponse as AppResponse
from bot.slack.signed_requests import SlackRequestBody as SlackRequestBody
from bot.slack.signed_requests import SlackRequestSender as SlackRequestSender
from bot.slack.signed_requests import sign as sign
from bot.slack.signed_requests import signed_headers as signed_headers

DEFAULT_TEAM_ID = "T0TEST"
DEFAULT_TEAM_DOMAIN = "t0test"
DEFAULT_USER_ID = "U0TEST"
DEFAULT_CHANNEL_ID = "C0TEST"
DEFAULT_APP_ID = "A0TEST"
DEFAULT_BOT_USER_ID = "U0TESTBOT"
DEFAULT_BOT_ID = "B0TESTBOT1"
VERIFICATION_TOKEN = "verification-token-test"  # deprecated field Slack still sends
# Port 9 (discard) on loopback: a bot that answers via an unset response_url fails fast
# instead of reaching the real hooks.slack.com. Pass SlackDouble.new_response_url().
UNSET_RESPONSE_URL = "http://127.0.0.1:9/response/unset"


def new_trigger_id(now: float | None = None) -> str:
    """A trigger_id shaped like Slack's ("<digits>.<digits>.<hex>").

    The first part is the minting time in milliseconds, so SlackDouble can refuse it once
    it is older than Slack's 3 seconds.
    """
    minted_ms = int((time.time() if now is None else now) * 1000)
    return f"{minted_ms}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"


def _team(team_id: str) -> dict[str, Any]:
    return {"id": team_id, "domain": team_id.lower()}


def _user(user_id: str, user_name: str | None, team_id: str) -> dict[str, Any]:
    name = user_name or user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


def _action_ts() -> str:
    now = time.time()
    return f"{int(now)}.{int(now * 1_000_000) % 1_000_000:06d}"


P = ParamSpec("P")


def _interaction_form(build: Callable[P, dict[str, Any]]) -> Callable[P, SlackRequestBody]:
    """Interactions travel as one form field, `payload=<json>`."""

    @wraps(build)
    def body(*args: P.args, **kwargs: P.kwargs) -> SlackRequestBody:
        return SlackRequestBody(urlencode({"payload": json.dumps(build(*args, **kwargs))}), FORM)

    return body


def _form(build: Callable[P, dict[str, Any]]) -> Callable[P, SlackRequestBody]:
    @wraps(build)
    def body(*args: P.args, **kwargs: P.kwargs) -> SlackRequestBody:
        return SlackRequestBody(urlencode(build(*args, **kwargs)), FORM)

    return body


def _json(build: Callable[P, dict[str, Any]]) -> Callable[P, SlackRequestBody]:
    @wraps(build)
    def body(*args: P.args, **kwargs: P.kwargs) -> SlackRequestBody:
        return SlackRequestBody(json.dumps(build(*args, **kwargs)), JSON)

    return body


# ----- payloads (dicts, also what Socket Mode envelopes carry) -----------------------------


def slash_command_payload(
    command: str = "/incident",
    text: str = "",
    user_id: str = DEFAULT_USER_ID,
    user_name: str | None = None,
    channel_id: str = DEFAULT_CHANNEL_ID,
    team_id: str = DEFAULT_TEAM_ID,
    response_url: str = UNSET_RESPONSE_URL,
    trigger_id: str | None = None,
    *,
    channel_name: str = "incidents",
    api_app_id: str = DEFAULT_APP_ID,
) -> dict[str, str]:
    """A slash command invocation's fields, in Slack's order."""
    fields = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": team_id.lower(),
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or new_trigger_id(),
    }
    return fields


def _find_element(blocks: Any, action_id: str) -> tuple[str | None, dict[str, Any] | None]:
    """(block_id, element) of the interactive element with `action_id` in `blocks`."""
    for block in blocks or []:
        if not isinstance(block, dict):
            continue
        candidates = list(block.get("elements") or [])
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                candidates.append(block[key])
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block.get("block_id"), element
    return None, None


def block_actions_payload(
    action_id: str,
    value: str | None = None,
    user_id: str = DEFAULT_USER_ID,
    channel_id: str = DEFAULT_CHANNEL_ID,
    message_ts: str | None = None,
    trigger_id: str | None = None,
    response_url: str = UNSET_RESPONSE_URL,
    block_id: str | None = None,
    message: Mapping[str, Any] | None = None,
    container: Mapping[str, Any] | None = None,
    *,
    view: Mapping[str, Any] | None = None,
    user_name: str | None = None,
    team_id: str = DEFAULT_TEAM_ID,
    channel_name: str = "incidents",
    is_ephemeral: bool = False,
    action_overrides: Mapping[str, Any] | None = None,
    api_app_id: str = DEFAULT_APP_ID,
) -> dict[str, Any]:
    """A click on an interactive element (the `block_actions` payload).

    Pass the posted `message` (e.g. from SlackDouble.messages) to have the element's block_id,
    text, type and value taken from it, as Slack does. With `view`, the action comes from a
    modal (container type "view", no channel/message/response_url). `action_overrides` is
    merged into the action (e.g. {"type": "static_select", "selected_option": {...}}).
    """
    source = view if view is not None else message or {}
    found_block_id, element = _find_element(source.get("blocks"), action_id)
    element = element or {}
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": block_id or found_block_id or "b0",
        "type": element.get("type", "button"),
        "action_ts": _action_ts(),
    }
    if action["type"] == "button":
        action["text"] = element.get("text") or {"type": "plain_text", "text": action_id}
        chosen = value if value is not None else element.get("value")
        if chosen is not None:
            action["value"] = chosen
        if "style" in element:
            action["style"] = element["style"]
    elif value is not None:
        action["value"] = value
    action.update(action_overrides or {})
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user(user_id, user_name, team_id),
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id or new_trigger_id(),
        "team": _team(team_id),
        "enterprise": None,
        "is_enterprise_install": False,
    }
    if view is not None:
        payload["container"] = dict(container or {"type": "view", "view_id": view.get("id")})
        payload["view"] = dict(view)
    else:
        ts = message_ts or (message or {}).get("ts") or _action_ts()
        payload["container"] = dict(
            container
            or {
                "type": "message",
                "message_ts": ts,
                "channel_id": channel_id,
                "is_ephemeral": is_ephemeral,
            }
        )
        payload["channel"] = {"id": channel_id, "name": channel_name}
        payload["message"] = dict(message) if message is not None else _default_message(ts)
        payload["response_url"] = response_url
    payload["state"] = {"values": {}}
    payload["actions"] = [action]
    return payload


def _default_message(ts: str) -> dict[str, Any]:
    return {
        "type": "message",
        "user": DEFAULT_BOT_USER_ID,
        "bot_id": DEFAULT_BOT_ID,
        "text": "",
        "ts": ts,
        "blocks": [],
    }


def state_values(values: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Modal `state.values`; a plain string leaf becomes a plain_text_input value."""
    return {
        block_id: {
            action_id: (
                {"type": "plain_text_input", "value": leaf} if isinstance(leaf, str) else dict(leaf)
            )
            for action_id, leaf in actions.items()
        }
        for block_id, actions in values.items()
    }


def view_submission_payload(
    callback_id: str,
    values: Mapping[str, Mapping[str, Any]],
    user_id: str = DEFAULT_USER_ID,
    private_metadata: str = "",
    trigger_id: str | None = None,
    *,
    view: Mapping[str, Any] | None = None,
    user_name: str | None = None,
    team_id: str = DEFAULT_TEAM_ID,
    response_urls: list[dict[str, Any]] | None = None,
    api_app_id: str = DEFAULT_APP_ID,
) -> dict[str, Any]:
    """A modal submission (the `view_submission` payload).

    `values` is `state.values` ({block_id: {action_id: {...}}}); string leaves are shorthand
    for plain_text_input values. Pass the opened `view` (SlackDouble.views[id]) to submit it.
    """
    base = dict(view or {})
    view_id = base.get("id") or "V0SUBMIT01"
    submitted = {
        "id": view_id,
        "team_id": team_id,
        "type": "modal",
        "blocks": base.get("blocks", []),
        "private_metadata": private_metadata or base.get("private_metadata", ""),
        "callback_id": callback_id,
        "state": {"values": state_values(values)},
        "hash": base.get("hash") or f"{int(time.time())}.{secrets.token_hex(4)}",
        "title": base.get("title") or {"type": "plain_text", "text": "Incident"},
        "clear_on_close": base.get("clear_on_close", False),
        "notify_on_close": base.get("notify_on_close", False),
        "close": base.get("close"),
        "submit": base.get("submit") or {"type": "plain_text", "text": "Submit"},
        "previous_view_id": base.get("previous_view_id"),
        "root_view_id": base.get("root_view_id") or view_id,
        "app_id": api_app_id,
        "external_id": base.get("external_id", ""),
        "app_installed_team_id": team_id,
        "bot_id": base.get("bot_id") or DEFAULT_BOT_ID,
    }
    payload = {
        "type": "view_submission",
        "team": _team(team_id),
        "user": _user(user_id, user_name, team_id),
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id or new_trigger_id(),
        "view": submitted,
        "response_urls": response_urls or [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    return payload


def event_callback_payload(
    event: Mapping[str, Any],
    event_id: str | None = None,
    team_id: str = DEFAULT_TEAM_ID,
    *,
    api_app_id: str = DEFAULT_APP_ID,
    bot_user_id: str = DEFAULT_BOT_USER_ID,
    event_time: int | None = None,
) -> dict[str, Any]:
    """An Events API delivery, with the authorizations Slack attaches."""
    now = int(time.time()) if event_time is None else event_time
    payload = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": api_app_id,
        "event": dict(event),
        "type": "event_callback",
        "event_id": event_id or f"Ev{secrets.token_hex(5).upper()}",
        "event_time": now,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{secrets.token_urlsafe(24)}",
    }
    return payload


def url_verification_payload(challenge: str) -> dict[str, Any]:
    """The Events API handshake Slack sends when the request URL is configured."""
    return {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}


# ----- bodies (HTTP, exactly as Slack posts them) ------------------------------------------

# Same parameters as the payload builders; they return (body, content_type).
slash_command_body = _form(slash_command_payload)
block_actions_body = _interaction_form(block_actions_payload)
view_submission_body = _interaction_form(view_submission_payload)
event_callback_body = _json(event_callback_payload)
url_verification_body = _json(url_verification_payload)
