"""`/incident report|postmortem|actions|stats`, the postmortem form and the Close button on
action items: thin listeners. Parse, call one service method, render."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import ChatOpsError, UsageError
from bot.incidents.parsing import parse_target
from bot.incidents.schemas import IncidentTarget
from bot.models import Incident
from bot.reports.chart_pace import ChartTooSoon
from bot.reports.forms import PostmortemFormErrors, parse_postmortem_form
from bot.reports.models import ActionItem
from bot.services import Services
from bot.slack import error_text, modals, report_blocks
from bot.text import decimal
from commands.context import (
    CommandContext,
    ModalResponder,
    listener_context,
    on_incident,
    run_command,
    target_parser,
)
from commands.interactions import action_value, form_metadata, form_target, open_form

log = logging.getLogger(__name__)


async def _report(ctx: CommandContext, incident_id: str, _: IncidentTarget) -> None:
    facts = await ctx.services.reports.share_report(
        incident_id, ctx.actor, channel=ctx.channel_id, request_id=ctx.request_id
    )
    channel = facts.incident.channel_id or ctx.channel_id or ""
    await ctx.reply(report_blocks.report_queued(facts.incident, channel))


report = on_incident("reports.report", target_parser("report"), _report)


async def postmortem(ctx: CommandContext, rest: str) -> None:
    # The trigger_id lives 3 s: open a placeholder first, fill it in after the reads.
    opened = await open_form(
        ctx.client, ctx.trigger_id, modals.loading_modal("Postmortem"), "postmortem", ctx.respond
    )
    if opened is None:
        return

    async def work() -> None:
        try:
            target = parse_target(rest, "postmortem")
            incident_id = await ctx.locate(target.incident_id)
            incident, recorded, items = await ctx.services.postmortems.postmortem(
                incident_id, actor=ctx.actor
            )
        except ChatOpsError as exc:  # said in the modal too, not left "loading"
            view = modals.error_modal("Postmortem", str(exc))
            await ctx.client.views_update(**form_target(opened), view=view)
            raise
        view = report_blocks.postmortem_modal(incident, recorded, items, origin=ctx.channel_id)
        await ctx.client.views_update(**form_target(opened), view=view)

    await run_command(
        ctx, "reports.postmortem_form", {"text": rest}, work, usage_for="postmortem", read_only=True
    )


async def _actions(ctx: CommandContext, incident_id: str, _: IncidentTarget) -> None:
    incident, items = await ctx.services.postmortems.action_items(incident_id)
    now = ctx.services.clock.now()
    await ctx.reply(
        report_blocks.action_items_text(incident, items),
        blocks=report_blocks.action_items_blocks(incident, items, now),
    )


actions = on_incident("reports.actions", target_parser("actions"), _actions, read_only=True)


# `30`, `30d`, `30 d`, `30 day`, `30 days`: how people type a number of days.
_DAYS = re.compile(r"([0-9]+)\s*(?:d|days?)?", re.IGNORECASE)


def parse_days(rest: str) -> int:
    text = rest.strip()
    if not text:
        return 30
    given = _DAYS.fullmatch(text)
    if given is None:
        raise UsageError(f"'{text[:40]}' is not a number of days.")
    return int(given[1])


async def stats(ctx: CommandContext, rest: str) -> None:
    async def work() -> None:
        days = parse_days(rest)
        held = ""
        try:
            figures = await ctx.services.reports.share_stats(
                days, ctx.actor, channel=ctx.channel_id or "", request_id=ctx.request_id
            )
        except ChartTooSoon as exc:
            # Only the chart is paced (its drawing and upload): the figures are a read, and
            # were refused with it.
            await ctx.audit_refusal("reports.stats", f"refused: {exc}", {"text": rest})
            figures = await ctx.services.reports.stats(days)
            held = str(exc)
        await ctx.reply(
            report_blocks.stats_text(figures),
            blocks=report_blocks.stats_blocks(figures, chart_held=held),
        )

    await run_command(ctx, "reports.stats", {"text": rest}, work, usage_for="stats")


async def reply_similar(ctx: CommandContext, incident: Incident) -> None:
    """Up to three earlier incidents like this one, as a second private answer."""
    try:
        found = await ctx.services.reports.similar_to(incident)
    except Exception:  # a hint only: never let it spoil the answer already given
        log.exception("similar incidents of %s failed", incident.id)
        return
    if found:
        await ctx.reply(
            report_blocks.similar_text(found), blocks=report_blocks.similar_blocks(found)
        )


SUBCOMMANDS = {"report": report, "postmortem": postmortem, "actions": actions, "stats": stats}


_SAVED_ANSWERS = (error_text.duplicate_request(), error_text.done_unconfirmed())


class _HeldAnswer:
    """A Responder that keeps the answer for the listener to send once it knows whether the
    postmortem was saved."""

    def __init__(self) -> None:
        self.saved = False
        self.text = ""

    async def __call__(
        self,
        text: str = "",
        blocks: Sequence[dict[str, Any]] | None = None,
        *,
        response_type: str | None = None,
    ) -> None:
        self.text = text


def register(app: AsyncApp, services: Services) -> None:
    @app.view(report_blocks.POSTMORTEM_VIEW)
    async def postmortem_submitted(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: dict[str, Any]
    ) -> None:
        view = body.get("view") or {}
        # The bot's own notes on the form; a signed body may still carry anything there.
        meta = form_metadata(view)
        try:
            form = parse_postmortem_form(
                report_blocks.postmortem_values(view),
                calendar=services.policy.calendar,
                now=services.clock.now(),
                shown=meta.get("shown", ""),
            )
        except PostmortemFormErrors as exc:
            await ack(response_action="errors", errors=exc.errors)
            return
        await ack()
        incident_id = meta.get("incident_id", "")
        # The answer waits for the outcome: a failure comes back with the text typed.
        answer = _HeldAnswer()
        ctx = listener_context(
            services, context, client, channel_id=meta.get("channel"), respond=answer
        )
        actor = ctx.actor

        async def work() -> None:
            if not incident_id:
                raise UsageError(
                    "This form names no incident, so nothing was saved: open it again with "
                    "`/incident postmortem INC-...`."
                )
            _, added = await services.postmortems.save_postmortem(
                incident_id, actor, form, request_id=ctx.request_id
            )
            answer.saved = True
            await ctx.reply(report_blocks.postmortem_saved(incident_id, added))

        await run_command(ctx, "reports.postmortem", {"incident_id": incident_id}, work)
        # A repeat of a saved form, or one saved though its answer was lost: nothing to give.
        if answer.saved or answer.text in _SAVED_ANSWERS:
            await ModalResponder(client, meta.get("channel"), actor.user_id)(answer.text)
        else:
            # By DM (channel None): an ephemeral answer is gone once Slack is reloaded.
            for given_back in report_blocks.postmortem_given_back(incident_id, answer.text, form):
                await ModalResponder(client, None, actor.user_id)(given_back)

    @app.action(report_blocks.CLOSE_ITEM_ACTION)
    async def close_clicked(
        ack: AsyncAck,
        body: dict[str, Any],
        client: AsyncWebClient,
        context: dict[str, Any],
        respond: AsyncRespond,
    ) -> None:
        await ack()
        # From a message, the App Home or a DM: answer where possible, else by DM.
        channel = body.get("channel")
        channel_id = channel.get("id") if isinstance(channel, dict) else None
        ctx = listener_context(
            services,
            context,
            client,
            channel_id=channel_id if isinstance(channel_id, str) else None,
        )
        actor = ctx.actor
        value = action_value(body)

        async def work() -> None:
            item_id = decimal(value)
            if item_id is None:
                raise UsageError("That button names no action item.")
            item, changed = await services.postmortems.close_action_item(
                item_id, actor, request_id=ctx.request_id
            )
            await ctx.reply(report_blocks.item_closed(item, changed))
            await show_closed(body, item, client, respond)

        await run_command(ctx, "reports.action_item_close", {"item_id": value}, work)

    async def show_closed(
        body: dict[str, Any], item: ActionItem, client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        """The message clicked shows the item closed, without its button, so nobody wonders
        whether it is (the App Home is refreshed by the change itself)."""
        container = body.get("container")
        if not isinstance(container, dict) or container.get("type") != "message":
            return
        now = services.clock.now()
        try:
            if container.get("is_ephemeral"):  # the `/incident actions` list: all of it
                incident, items = await services.postmortems.action_items(item.incident_id)
                await respond(
                    replace_original=True,
                    text=report_blocks.action_items_text(incident, items),
                    blocks=report_blocks.action_items_blocks(incident, items, now),
                )
            else:  # a reminder by direct message
                await client.chat_update(
                    channel=str(container.get("channel_id")),
                    ts=str(container.get("message_ts")),
                    text=report_blocks.item_closed(item, True),
                    blocks=report_blocks.closed_item_blocks(item, now),
                )
        except Exception:  # the item is closed and the person told: this is only the view
            log.warning("could not show action item #%s closed in its message", item.id)
