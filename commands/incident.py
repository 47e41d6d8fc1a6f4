"""`/incident ...`: thin listeners. Parse, call one service method, render."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import UsageError
from bot.incidents.parsing import (
    parse_assign,
    parse_command,
    parse_declare,
    parse_drill,
    parse_list,
    parse_note,
    parse_publish,
    parse_reopen,
    parse_resolve,
    parse_severity,
    parse_unpublish,
)
from bot.incidents.schemas import (
    AddNote,
    AssignRole,
    ChangeSeverity,
    DeclareIncident,
    IncidentTarget,
    PublishIncident,
    ReopenIncident,
    ResolveIncident,
    UnpublishIncident,
    UpdateStatus,
)
from bot.incidents.timeline_changes import AlreadyAssigned
from bot.incidents.update_parsing import parse_update
from bot.notify import EscalationShown
from bot.services import Services
from bot.slack import blocks, catchup_text, drill_text, help_text, list_text, modals, templates
from bot.slack.escape import from_slack
from commands.context import (
    CommandContext,
    listener_context,
    on_incident,
    run_command,
    target_parser,
)
from commands.escalate import escalate
from commands.interactions import open_form
from commands.report import SUBCOMMANDS as REPORT_SUBCOMMANDS
from commands.report import reply_similar

Subcommand = Callable[[CommandContext, str], Awaitable[None]]


async def declared(ctx: CommandContext, command: DeclareIncident) -> None:
    """Declare and answer: the one path of the typed command and the form alike (the
    confirmation, then up to three similar earlier incidents)."""
    incident = await ctx.services.incidents.declare(command, ctx.actor, request_id=ctx.request_id)
    policy = ctx.services.policy
    await ctx.reply(
        templates.declared_confirmation(
            incident, policy.announce_channel, war_room=policy.has_war_room(incident.severity)
        )
    )
    await reply_similar(ctx, incident)


async def declare(ctx: CommandContext, rest: str) -> None:
    if not rest.strip():
        await open_declare_form(ctx)
        return

    async def work() -> None:
        await declared(ctx, parse_declare(rest))

    await run_command(ctx, "incident.declare", {"text": rest}, work, usage_for="declare")


async def drill(ctx: CommandContext, rest: str) -> None:
    """`/incident drill <P0-P3> [<service>:] <scenario>`: a practice incident, declared like
    any other with its drill flag set (bot.incidents.drills)."""

    async def work() -> None:
        command = parse_drill(rest, catalog=list(ctx.services.policy.services))
        incident = await ctx.services.incidents.declare(
            command, ctx.actor, request_id=ctx.request_id
        )
        policy = ctx.services.policy
        declared = templates.declared_confirmation(
            incident, policy.announce_channel, war_room=policy.has_war_room(incident.severity)
        )
        await ctx.reply(f"{declared} {drill_text.checks_line(incident, list(policy.services))}")

    await run_command(ctx, "incident.drill", {"text": rest}, work, usage_for="drill")


async def open_declare_form(ctx: CommandContext) -> None:
    """`/incident declare` alone: the form, opened at once (the trigger_id lives 3 s)."""
    view = modals.declare_modal(
        origin_channel=ctx.channel_id, services=sorted(ctx.services.policy.services)
    )
    await open_form(ctx.client, ctx.trigger_id, view, "declare", ctx.respond)


# -- the lifecycle: shared by the subcommands and the buttons (commands.actions) ----------


async def acknowledge(ctx: CommandContext, incident_id: str) -> None:
    outcome = await ctx.services.incidents.acknowledge(
        incident_id, ctx.actor, request_id=ctx.request_id
    )
    if not outcome.changed:
        # Someone else was first (a second click, or two people at once): a refusal.
        await ctx.audit_refusal(
            "incident.ack", "refused: already acknowledged", {"incident_id": outcome.incident.id}
        )
        await ctx.reply(templates.already_acknowledged(outcome.incident))
        return
    await ctx.reply(templates.acknowledged_confirmation(outcome.incident))


async def _ack(ctx: CommandContext, incident_id: str, _: IncidentTarget) -> None:
    await acknowledge(ctx, incident_id)


ack = on_incident("incident.ack", target_parser("ack"), _ack)


async def post_update(ctx: CommandContext, incident_id: str, command: UpdateStatus) -> None:
    """Post a status update and answer: the typed command and the form alike."""
    incident = await ctx.services.incidents.update_status(
        incident_id,
        ctx.actor,
        status=command.status,
        message=command.message,
        eta=command.eta,
        impact=command.impact,
        request_id=ctx.request_id,
        publish=command.publish,
        status_untouched=command.status_untouched,
    )
    answer = templates.update_confirmation(incident, ctx.services.policy.announce_channel)
    if command.publish:
        answer = f"{answer} {templates.PUBLISHED_WITH_UPDATE}"
    await ctx.reply(answer)


update = on_incident("incident.update", parse_update, post_update)


async def _severity(ctx: CommandContext, incident_id: str, command: ChangeSeverity) -> None:
    incident = await ctx.services.incidents.change_severity(
        incident_id, ctx.actor, severity=command.severity, request_id=ctx.request_id
    )
    await ctx.reply(templates.severity_confirmation(incident))


severity = on_incident("incident.severity", parse_severity, _severity)


async def _assign(ctx: CommandContext, incident_id: str, command: AssignRole) -> None:
    try:
        incident = await ctx.services.incidents.assign(
            incident_id,
            ctx.actor,
            role=command.role,
            user_id=command.user_id,
            request_id=ctx.request_id,
        )
    except AlreadyAssigned as held:
        args = {"incident_id": held.incident.id, "role": held.role.value, "user": held.user_id}
        await ctx.audit_refusal("incident.assign", "refused: already assigned", args)
        await ctx.reply(templates.already_assigned(held.incident, held.role.value, held.user_id))
        return
    await ctx.reply(templates.assigned_confirmation(incident, command.role.value, command.user_id))


assign = on_incident("incident.assign", parse_assign, _assign)


async def _note(ctx: CommandContext, incident_id: str, command: AddNote) -> None:
    incident = await ctx.services.incidents.add_note(
        incident_id, ctx.actor, text=command.text, request_id=ctx.request_id
    )
    await ctx.reply(templates.noted_confirmation(incident))


note = on_incident("incident.note", parse_note, _note)


async def resolve_incident(ctx: CommandContext, incident_id: str, summary: str) -> None:
    incident = await ctx.services.incidents.resolve(
        incident_id, ctx.actor, summary=summary, request_id=ctx.request_id
    )
    await ctx.reply(templates.update_confirmation(incident, ctx.services.policy.announce_channel))


async def _resolve(ctx: CommandContext, incident_id: str, command: ResolveIncident) -> None:
    await resolve_incident(ctx, incident_id, command.summary)


resolve = on_incident("incident.resolve", parse_resolve, _resolve)


async def _reopen(ctx: CommandContext, incident_id: str, command: ReopenIncident) -> None:
    incident = await ctx.services.incidents.reopen(
        incident_id, ctx.actor, reason=command.reason, request_id=ctx.request_id
    )
    await ctx.reply(templates.reopened_confirmation(incident))


reopen = on_incident("incident.reopen", parse_reopen, _reopen)


async def list_incidents(ctx: CommandContext, rest: str) -> None:
    async def work() -> None:
        command = parse_list(rest)
        page = await ctx.services.incidents.list_page(
            open_only=command.open_only, page=command.page, drills=command.drills
        )
        await ctx.reply(list_text.list_title(page), blocks=blocks.incident_list(page))

    await run_command(ctx, "incident.list", {"text": rest}, work, usage_for="list", read_only=True)


async def _show(ctx: CommandContext, incident_id: str, _: IncidentTarget) -> None:
    incident = await ctx.services.incidents.get(incident_id)
    # A war room that should exist but does not: offer the retry right here.
    missing = incident.channel_id is None and ctx.services.policy.has_war_room(incident.severity)
    state = await ctx.services.escalation.state(incident.id)
    levels = ctx.services.policy.levels(incident.severity)
    shown = EscalationShown(state.level if state is not None else 0, len(levels))
    await ctx.reply(
        templates.card_text(incident),
        blocks=blocks.incident_show(incident, war_room_missing=missing, escalation=shown),
    )
    await reply_similar(ctx, incident)


show = on_incident("incident.show", target_parser("show"), _show, read_only=True)


async def _timeline(ctx: CommandContext, incident_id: str, _: IncidentTarget) -> None:
    incident, events = await ctx.services.incidents.with_timeline(incident_id)
    await ctx.reply(
        list_text.timeline_title(incident, len(events)),
        blocks=blocks.timeline(incident, events),
    )


timeline = on_incident("incident.timeline", target_parser("timeline"), _timeline, read_only=True)


async def _catchup(ctx: CommandContext, incident_id: str, _: IncidentTarget) -> None:
    caught_up = await ctx.services.catchup.catchup(incident_id)
    await ctx.reply(
        catchup_text.catchup_text(caught_up), blocks=catchup_text.catchup_blocks(caught_up)
    )


catchup = on_incident("incident.catchup", target_parser("catchup"), _catchup, read_only=True)


async def retry_war_room(ctx: CommandContext, incident_id: str) -> None:
    incident = await ctx.services.incidents.retry_war_room(
        incident_id, ctx.actor, request_id=ctx.request_id
    )
    await ctx.reply(templates.war_room_confirmation(incident))


async def _warroom(ctx: CommandContext, incident_id: str, _: IncidentTarget) -> None:
    await retry_war_room(ctx, incident_id)


warroom = on_incident("incident.warroom", target_parser("warroom"), _warroom)


async def _publish(ctx: CommandContext, incident_id: str, command: PublishIncident) -> None:
    if command.update is not None:  # a withdrawn update put back
        restored = await ctx.services.status.restore(
            incident_id, ctx.actor, command.update, request_id=ctx.request_id
        )
        await ctx.reply(
            templates.restored_confirmation(restored.incident.id, restored.update, restored.said)
        )
        return
    publication = await ctx.services.status.publish(
        incident_id, ctx.actor, request_id=ctx.request_id
    )
    await ctx.reply(
        templates.published_confirmation(
            publication.incident.id,
            newly_public=publication.newly_public,
            updates=publication.updates,
            withdrawn=publication.withdrawn,
        )
    )


publish = on_incident("incident.publish", parse_publish, _publish)


async def _unpublish(ctx: CommandContext, incident_id: str, command: UnpublishIncident) -> None:
    withdrawal = await ctx.services.status.unpublish(
        incident_id,
        ctx.actor,
        update=command.update,
        last=command.last,
        request_id=ctx.request_id,
    )
    await ctx.reply(
        templates.withdrawn_confirmation(withdrawal.incident.id, withdrawal.update, withdrawal.said)
    )


unpublish = on_incident("incident.unpublish", parse_unpublish, _unpublish)


async def show_help(ctx: CommandContext, rest: str) -> None:
    await ctx.reply(help_text.HELP)
    await ctx.audit_read("incident.help", {"text": rest})


SUBCOMMANDS: dict[str, Subcommand] = {
    "declare": declare,
    "drill": drill,
    "catchup": catchup,
    "ack": ack,
    "update": update,
    "severity": severity,
    "assign": assign,
    "note": note,
    "resolve": resolve,
    "reopen": reopen,
    "list": list_incidents,
    "show": show,
    "timeline": timeline,
    "warroom": warroom,
    "publish": publish,
    "unpublish": unpublish,
    "escalate": escalate,
    "help": show_help,
    **REPORT_SUBCOMMANDS,  # report, postmortem, actions, stats
}


# Subcommands whose arguments are read from Slack's markup (`<@U123|alice>`) as it came.
MENTION_ARGUMENTS = {"assign"}


def register(app: AsyncApp, services: Services) -> None:
    @app.command("/incident")
    async def incident_command(
        ack: AsyncAck,
        command: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
        context: dict[str, Any],
    ) -> None:
        await ack()
        raw = str(command.get("text") or "")
        ctx = listener_context(
            services,
            context,
            client,
            channel_id=command.get("channel_id"),
            respond=respond,
            trigger_id=command.get("trigger_id"),
        )
        try:
            name, rest = parse_command(raw)
        except UsageError as exc:
            await ctx.audit_refusal("incident", "rejected: usage", {"text": raw})
            await ctx.reply(help_text.usage("help", str(exc)))
            return
        handler = SUBCOMMANDS.get(name)
        if handler is None:
            await ctx.audit_refusal(
                "incident." + name[:40], "rejected: unknown command", {"text": rest}
            )
            await ctx.reply(help_text.unknown_subcommand(name))
            return
        # Slack's markup becomes the plain text the person saw (`<!channel>` -> `@channel`),
        # except where a mention is the argument itself.
        await handler(ctx, from_slack(rest, keep_people=name in MENTION_ARGUMENTS))
