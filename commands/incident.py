"""`/incident ...`: thin listeners. Parse, call one service method, render."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.incidents.parsing import parse_declare, split_subcommand
from bot.services import Services
from bot.slack import templates
from commands.context import CommandContext, run_command

Subcommand = Callable[[CommandContext, str], Awaitable[None]]


async def declare(ctx: CommandContext, rest: str) -> None:
    async def work() -> None:
        command = parse_declare(rest)
        incident = await ctx.services.incidents.declare(
            command, ctx.actor, request_id=ctx.request_id
        )
        await ctx.reply(
            templates.declared_confirmation(incident, ctx.services.policy.announce_channel)
        )

    await run_command(ctx, "incident.declare", {"text": rest}, work, usage_for="declare")


async def show_help(ctx: CommandContext, rest: str) -> None:
    await ctx.reply(templates.HELP)


SUBCOMMANDS: dict[str, Subcommand] = {
    "declare": declare,
    "help": show_help,
}


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
        name, rest = split_subcommand(command.get("text", ""))
        ctx = CommandContext(
            services=services,
            actor=context["actor"],
            request_id=context.get("request_id"),
            channel_id=command.get("channel_id"),
            respond=respond,
            client=client,
            trigger_id=command.get("trigger_id"),
        )
        handler = SUBCOMMANDS.get(name)
        if handler is None:
            await ctx.audit_refusal(
                "incident." + name[:40], "rejected: unknown command", {"text": rest}
            )
            await ctx.reply(templates.unknown_subcommand(name))
            return
        await handler(ctx, rest)
