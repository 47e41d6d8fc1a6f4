"""`/remediate <action> <service> [key=value ...]` and the Approve / Deny buttons of a request:
thin listeners. Ack at once, call RemediationService, answer the clicker privately."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.models import Actor
from bot.services import Services
from bot.slack import remediation_blocks as views
from bot.text import decimal
from commands.context import (
    CommandContext,
    command_words,
    listener_context,
    record_invocation,
    run_command,
)
from commands.interactions import action_value, on_click


async def request_remediation(
    ctx: CommandContext,
    action: str,
    service: str,
    *,
    words: list[str] | None = None,
    params: dict[str, Any] | None = None,
    origin: str,
    incident_id: str | None = None,
) -> None:
    """Dry-run and post a request (from the command or a /diagnose suggestion button, which
    names the incident it was diagnosed for).
    One answer: the refusal, or the request posted (the dry run is bounded by the target's
    timeout), never a promise followed by a refusal."""

    async def work() -> None:
        request = await ctx.services.remediation.request(
            action,
            service,
            ctx.actor,
            words=words or (),
            params=params,
            channel_id=ctx.channel_id,
            incident_id=incident_id,
            request_id=ctx.request_id,
            origin=origin,
        )
        await ctx.reply(views.requested(request))

    args = {"action": action[:80], "service": service[:80], "origin": origin}
    await run_command(ctx, "remediation.request", args, work, usage_for="remediate")


def request_id_of(body: dict[str, Any]) -> int:
    """The request a button names; 0 (no such request) for anything but a plain number."""
    return decimal(action_value(body)) or 0


async def decide(ctx: CommandContext, verb: str, request_id: int) -> None:
    """Approve or deny a request (a message's buttons or the App Home's); answer the clicker."""
    remediation = ctx.services.remediation
    actor: Actor = ctx.actor

    async def work() -> None:
        if verb == "approve":
            decision = await remediation.approve(request_id, actor, request_key=ctx.request_id)
        else:
            decision = await remediation.deny(request_id, actor, request_key=ctx.request_id)
        if decision.refused:
            await ctx.reply(views.refused(decision.refused))
        elif verb == "approve":
            await ctx.reply(views.approved(decision.request, decision.started))
        else:
            await ctx.reply(views.denied(decision.request))

    # The service audits approvals, denials and refusals itself, in their transactions.
    await run_command(ctx, f"remediation.{verb}", {"request": request_id}, work)


def register(app: AsyncApp, services: Services) -> None:
    @app.command("/remediate")
    async def remediate_command(
        ack: AsyncAck,
        command: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
        context: dict[str, Any],
    ) -> None:
        raw = str(command.get("text") or "")
        words = await command_words(
            ack, services, context, raw, usage_for="remediate", action="remediation"
        )
        if words is None:
            return
        if len(words) < 2 or words[0].lower() == "help":
            alone = len(words) == 1 and words[0].lower() != "help"  # the service left out
            await ack(
                response_type="ephemeral",
                text=views.usage(views.no_service(words[0]) if alone else ""),
            )
            await record_invocation(
                services,
                context["actor"],
                "remediation.help",
                "ok" if not words or words[0].lower() == "help" else "rejected: usage",
                {"text": (command.get("text") or "")[:200]},
                context.get("request_id"),
            )
            return
        await ack()  # the one answer follows: the refusal, or the request posted
        ctx = listener_context(
            services, context, client, channel_id=command.get("channel_id"), respond=respond
        )
        await request_remediation(ctx, words[0], words[1], words=words[2:], origin="command")

    def on_decision(action_id: str, verb: str) -> None:
        @on_click(app, services, action_id)
        async def decision_clicked(ctx: CommandContext, body: dict[str, Any]) -> None:
            await decide(ctx, verb, request_id_of(body))

    on_decision(views.APPROVE_ACTION, "approve")
    on_decision(views.DENY_ACTION, "deny")
