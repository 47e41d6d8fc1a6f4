"""Buttons and forms no listener knows: from a message or a form an older version of the
bot posted, or a payload made up by hand. Bolt hands them to the app's error handler
(`raise_error_for_unhandled_request`), whatever order listeners were registered in; they are
acknowledged, answered privately, audited, and change nothing. Answered 404, Slack showed
only a warning sign by the button, or "trouble connecting" in the form."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any

from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import NotFound
from bot.services import Services
from bot.slack import error_text, modals
from commands.context import listener_context, record_invocation, run_command
from commands.interactions import channel_of

# The answers still being sent after the acknowledgement (a reference keeps each alive).
_answering: set[asyncio.Task[None]] = set()


def _after_ack(work: Awaitable[None]) -> None:
    task = asyncio.ensure_future(work)
    _answering.add(task)
    task.add_done_callback(_answering.discard)


def _first_action_id(body: dict[str, Any]) -> str:
    actions = body.get("actions") or [{}]
    return str(actions[0].get("action_id", ""))[:100]


def unhandled(
    services: Services,
    body: dict[str, Any],
    context: dict[str, Any],
    client: AsyncWebClient,
    respond: AsyncRespond | None,
) -> BoltResponse | None:
    """The acknowledgement of a click or a form no listener took (its answer follows);
    None for anything else (Bolt's 404 stands)."""
    kind = body.get("type")
    if kind == "block_actions":
        ctx = listener_context(
            services, context, client, channel_id=channel_of(body), respond=respond
        )

        async def refuse() -> None:
            raise NotFound(error_text.unknown_button())

        args = {"action_id": _first_action_id(body)}
        _after_ack(run_command(ctx, "slack.unknown_action", args, refuse))
        return BoltResponse(status=200, body="")
    if kind == "view_submission":
        callback_id = str((body.get("view") or {}).get("callback_id", ""))[:100]
        _after_ack(
            record_invocation(
                services,
                context["actor"],
                "slack.unknown_view",
                "refused: unknown form",
                {"callback_id": callback_id},
                context.get("request_id"),
            )
        )
        answer = {
            "response_action": "update",
            "view": modals.message_modal("Not saved", error_text.unknown_form()),
        }
        return BoltResponse(
            status=200,
            body=json.dumps(answer),
            headers={"content-type": "application/json;charset=utf-8"},
        )
    return None
