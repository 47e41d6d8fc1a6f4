"""Buttons on incident cards: thin listeners. Ack, call one service method, answer.

Every button carries the incident ID as its value (Escalate also the level its card showed);
the card itself is refreshed through the outbox after the change, so nobody needs a second
click to see what happened.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import ChatOpsError, PermissionDenied
from bot.http_errors import UNREACHABLE
from bot.incidents.queries import well_formed_id
from bot.services import Services
from bot.slack import blocks, error_text, modals, templates
from commands.context import CommandContext, listener_context, run_command
from commands.escalate import escalate_incident
from commands.incident import acknowledge, resolve_incident, retry_war_room
from commands.interactions import action_value, channel_of, form_target, on_click, open_form

log = logging.getLogger(__name__)


ButtonWork = Callable[[CommandContext, str], Awaitable[None]]


def _on_click(
    app: AsyncApp, services: Services, action_id: str, action: str, run: ButtonWork
) -> None:
    """A button that acts on the incident named in its value: ack, run, answer privately."""

    @on_click(app, services, action_id, with_trigger=True)
    async def clicked(ctx: CommandContext, body: dict[str, Any]) -> None:
        incident_id = action_value(body)

        async def work() -> None:
            await run(ctx, well_formed_id(incident_id))

        await run_command(ctx, action, {"incident_id": incident_id, "via": "button"}, work)


def _on_escalate(app: AsyncApp, services: Services) -> None:
    """Escalate pages the next level only if the escalation still stands at the level and
    severity its card showed (two people pressing at once page one level; a card from before
    a severity change pages nobody); a button without a level (a card rendered before they
    carried one) pages one level up from where it stands."""

    @on_click(app, services, blocks.ESCALATE_ACTION)
    async def clicked(ctx: CommandContext, body: dict[str, Any]) -> None:
        incident_id, seen_level, seen_severity = blocks.escalate_value_parts(action_value(body))

        async def work() -> None:
            await escalate_incident(
                ctx, well_formed_id(incident_id), seen_level=seen_level, seen_severity=seen_severity
            )

        args = {"incident_id": incident_id, "via": "button"}
        await run_command(ctx, "incident.escalate", args, work)


async def _resolve(ctx: CommandContext, incident_id: str) -> None:
    # The button's confirm dialog has already asked "are you sure?".
    await resolve_incident(ctx, incident_id, templates.resolved_by_button())


def register(app: AsyncApp, services: Services) -> None:
    _on_click(app, services, blocks.ACK_ACTION, "incident.ack", acknowledge)
    _on_click(app, services, blocks.RESOLVE_ACTION, "incident.resolve", _resolve)
    _on_escalate(app, services)
    _on_click(app, services, blocks.RETRY_WAR_ROOM_ACTION, "incident.warroom", retry_war_room)

    @app.action(blocks.UPDATE_ACTION)
    async def post_update_clicked(
        ack: AsyncAck,
        body: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
        context: dict[str, Any],
    ) -> None:
        await ack()
        incident_id = action_value(body)
        # The trigger_id expires in 3 s: open a placeholder now, fill it in after the read.
        opened = await open_form(
            client,
            body.get("trigger_id"),
            modals.loading_modal("Post an update"),
            "update",
            respond,
        )
        if opened is None:
            return
        try:
            try:
                await services.incidents.require_responder(context["actor"])
            except PermissionDenied:
                # Said before anything is typed (the card offers the button to everyone).
                ctx = listener_context(
                    services, context, client, channel_id=channel_of(body), respond=respond
                )
                args = {"incident_id": incident_id}
                await ctx.audit_refusal("incident.update_form", "refused: not allowed", args)
                raise
            incident = await services.incidents.get(incident_id)
            if incident.is_open:
                view = modals.update_modal(incident, origin_channel=channel_of(body))
            else:
                view = modals.message_modal("Post an update", templates.update_resolved(incident))
        except ChatOpsError as exc:  # unknown incident, store down: said in the modal
            view = modals.error_modal("Post an update", str(exc))
        try:
            await client.views_update(**form_target(opened), view=view)
        except (SlackApiError, *UNREACHABLE) as exc:
            # The form is left "loading": say so, and what to do instead.
            log.warning("could not fill in the update form for %s: %r", incident_id, exc)
            response = exc.response if isinstance(exc, SlackApiError) else None
            error = str(response.get("error", "")) if response is not None else ""
            text = error_text.form_failed("update", error or "slack_unreachable")
            await respond(text=text, response_type="ephemeral")
