"""`/incident escalate [INC-ID] [reason]`: page the next escalation level now."""

from __future__ import annotations

from bot.incidents.parsing import parse_escalate
from bot.slack import templates
from commands.context import CommandContext, run_command


async def escalate(ctx: CommandContext, rest: str) -> None:
    """Escalate the named incident, or the one whose channel this is, by hand."""

    async def work() -> None:
        command = parse_escalate(rest)
        target = await ctx.locate(command.incident_id)
        done = await ctx.services.escalation.escalate(
            target, ctx.actor, reason=command.reason, request_id=ctx.request_id
        )
        await ctx.reply(
            templates.escalated_confirmation(
                done.incident.id, done.level, done.last_level, done.targets
            )
        )

    await run_command(ctx, "incident.escalate", {"text": rest}, work, usage_for="escalate")
