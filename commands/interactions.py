"""Slack's interactivity as listeners meet it: modals opened (a trigger lives 3 s) and read
back, buttons registered and their clicks handed over with their context."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.http_errors import UNREACHABLE
from bot.services import Services
from bot.slack import error_text
from commands.context import CommandContext, Responder, listener_context

# Logged as before this moved out of commands.context: log-based alerts match the name.
log = logging.getLogger("commands.context")


async def open_form(
    client: AsyncWebClient,
    trigger_id: str | None,
    view: dict[str, Any],
    form: str,
    respond: Responder,
) -> dict[str, Any] | None:
    """Open a modal at once (a trigger_id lives 3 s): the opened view, or None once the
    person is told that this `form` (error_text.form_failed) could not open, and why.

    The view gets an `external_id` of its own: when the answer is lost and slack_sdk's retry
    is answered `exchanged_trigger_id`, the first call opened it. That is an opened form
    (without its ID: views.update finds it by `form_target`), not one to say failed."""
    view = {**view, "external_id": view.get("external_id") or f"form-{uuid.uuid4().hex}"}
    try:
        opened = await client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as exc:
        error = str(exc.response.get("error", "")) if exc.response is not None else "error"
        if error == "exchanged_trigger_id":
            log.info("views.open for the %s form: its trigger was used (a retry): opened", form)
            return {"id": "", "external_id": view["external_id"]}
        await respond(text=error_text.form_failed(form, error), response_type="ephemeral")
        return None
    except UNREACHABLE as exc:
        # No answer (a timeout, a dropped connection): the form may or may not be open.
        log.warning("views.open for the %s form got no answer: %r", form, exc)
        await respond(text=error_text.form_unanswered(form), response_type="ephemeral")
        return None
    return dict(opened["view"])


def form_target(opened: dict[str, Any]) -> dict[str, str]:
    """How views.update finds a form open_form opened: its ID, else its external_id."""
    if opened.get("id"):
        return {"view_id": str(opened["id"])}
    return {"external_id": str(opened["external_id"])}


def click_context(
    services: Services,
    context: dict[str, Any],
    client: AsyncWebClient,
    body: dict[str, Any],
    respond: Responder,
    *,
    trigger_id: str | None = None,
) -> CommandContext:
    """One button click: answered privately, in the channel the button was clicked in."""
    return listener_context(
        services,
        context,
        client,
        channel_id=channel_of(body),
        respond=respond,
        trigger_id=trigger_id,
    )


ClickHandler = Callable[[CommandContext, dict[str, Any]], Awaitable[None]]


def on_click(
    app: AsyncApp,
    services: Services,
    action_id: str | re.Pattern[str],
    *,
    with_trigger: bool = False,
) -> Callable[[ClickHandler], ClickHandler]:
    """Register the decorated `handle(ctx, body)` for a button: Bolt's listener acks at once,
    then hands it the click's context (with its trigger_id when `with_trigger`, to open a
    modal) and the request body."""

    def decorate(handle: ClickHandler) -> ClickHandler:
        @app.action(action_id)
        async def clicked(
            ack: AsyncAck,
            body: dict[str, Any],
            respond: AsyncRespond,
            client: AsyncWebClient,
            context: dict[str, Any],
        ) -> None:
            await ack()
            trigger_id = body.get("trigger_id") if with_trigger else None
            ctx = click_context(services, context, client, body, respond, trigger_id=trigger_id)
            await handle(ctx, body)

        return handle

    return decorate


def channel_of(body: dict[str, Any]) -> str | None:
    """The channel a button was clicked in (a message's, or its container's); None in the
    App Home."""
    # A signed body may still hold anything here: a channel that is not an object is none.
    channel = body.get("channel")
    container = body.get("container")
    for found in (
        channel.get("id") if isinstance(channel, dict) else None,
        container.get("channel_id") if isinstance(container, dict) else None,
    ):
        if isinstance(found, str) and found:
            return found
    return None


def form_metadata(view: dict[str, Any]) -> dict[str, str]:
    """The form's own notes (origin channel, incident): strings only, anything else dropped."""
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except (TypeError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {key: value for key, value in data.items() if isinstance(value, str)}


def action_value(body: dict[str, Any]) -> str:
    """The value of the clicked button (an incident ID, a request number, JSON)."""
    actions = body.get("actions") or [{}]
    return str(actions[0].get("value") or "")
