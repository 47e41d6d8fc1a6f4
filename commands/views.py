"""Modal submissions: validate before the ack (errors go back beside the fields), then one
service call. A modal has no response_url, so the answer is an ephemeral message in the
channel where the form was opened, or a direct message when that is not possible."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import Conflict, PermissionDenied
from bot.incidents.forms import FormErrors, FormValue, parse_declare_form, parse_update_form
from bot.services import Services
from bot.slack import modals, templates
from commands.context import CommandContext, listener_context, run_command
from commands.incident import declared, post_update
from commands.interactions import form_metadata

log = logging.getLogger(__name__)


def form_fields(view: dict[str, Any]) -> dict[str, FormValue]:
    """{block_id: value} from a submitted view's state (text, select or multi-select)."""
    fields: dict[str, FormValue] = {}
    state = view.get("state")
    values = state.get("values") if isinstance(state, dict) else None
    # Read before the ack: a state of the wrong shape gives empty fields (refused beside
    # them), never an exception that would leave Slack waiting.
    for block_id, actions in values.items() if isinstance(values, dict) else ():
        element = actions.get(modals.INPUT_ACTION) if isinstance(actions, dict) else None
        if not isinstance(element, dict):
            continue
        if "selected_options" in element:
            options = element.get("selected_options")
            fields[block_id] = [
                o["value"]
                for o in (options if isinstance(options, list) else ())
                if isinstance(o, dict) and isinstance(o.get("value"), str) and o["value"]
            ]
        elif "selected_option" in element:
            option = element.get("selected_option")
            chosen = option.get("value") if isinstance(option, dict) else None
            fields[block_id] = chosen if isinstance(chosen, str) else None
        else:
            value = element.get("value")
            fields[block_id] = value if isinstance(value, str) else None
    return fields


def _form_context(
    services: Services,
    context: dict[str, Any],
    client: AsyncWebClient,
    body: dict[str, Any],
    meta: dict[str, str],
) -> CommandContext:
    """A submitted form's invocation: answered in the channel the form was opened from."""
    return listener_context(
        services,
        context,
        client,
        channel_id=meta.get("channel"),
        trigger_id=body.get("trigger_id"),
    )


def register(app: AsyncApp, services: Services) -> None:
    @app.view(modals.DECLARE_VIEW)
    async def declare_submitted(
        ack: AsyncAck,
        body: dict[str, Any],
        view: dict[str, Any],
        client: AsyncWebClient,
        context: dict[str, Any],
    ) -> None:
        fields = form_fields(view)
        meta = form_metadata(view)
        ctx = _form_context(services, context, client, body, meta)
        try:
            command = parse_declare_form(fields)
        except FormErrors as exc:
            await ack(response_action="errors", errors=exc.errors)
            await ctx.audit_refusal("incident.declare", "rejected: usage", {"form": fields})
            return
        await ack()

        async def work() -> None:
            await declared(ctx, command)  # the typed command's path, similar incidents and all

        typed = "\n".join(filter(None, (command.title, command.impact)))
        await run_command(
            ctx, "incident.declare", {"form": fields}, work, usage_for="declare", given_back=typed
        )

    @app.view(modals.UPDATE_VIEW)
    async def update_submitted(
        ack: AsyncAck,
        body: dict[str, Any],
        view: dict[str, Any],
        client: AsyncWebClient,
        context: dict[str, Any],
    ) -> None:
        fields = form_fields(view)
        meta = form_metadata(view)
        incident_id = str(meta.get("incident") or "")
        ctx = _form_context(services, context, client, body, meta)
        args = {"incident_id": incident_id, "form": fields}
        try:
            command = parse_update_form(incident_id, fields, shown=meta)
        except FormErrors as exc:
            await ack(response_action="errors", errors=exc.errors)
            await ctx.audit_refusal("incident.update", "rejected: usage", args)
            return
        await ack()

        async def work() -> None:
            try:
                await post_update(ctx, incident_id, command)
            except Conflict as exc:
                # Resolved (or moved on) since the form opened: the modal is gone, so the
                # answer gives back what was typed rather than lose it.
                await ctx.audit_refusal("incident.update", f"refused: {exc}", args)
                await ctx.reply(templates.update_refused(str(exc), command.message))
            except PermissionDenied as exc:
                # Not a responder, or the Publish box ticked by someone who may not publish:
                # the same, the text back (nothing was posted).
                await ctx.audit_refusal("incident.update", "refused: not allowed", args)
                await ctx.reply(templates.update_refused(str(exc), command.message))

        await run_command(
            ctx, "incident.update", args, work, usage_for="update", given_back=command.message
        )
