"""`/incident escalate [INC-ID] [reason]`: page the next escalation level now."""

from __future__ import annotations

from bot.incidents.parsing import parse_escalate
from bot.incidents.schemas import EscalateIncident
from bot.slack import escalation_text
from commands.context import CommandContext, on_incident


async def escalate_incident(ctx: CommandContext, incident_id: str, reason: str = "") -> None:
    """Page the incident's next escalation level now (the subcommand and the card's button)."""
    done = await ctx.services.escalation.escalate(
        incident_id, ctx.actor, reason=reason, request_id=ctx.request_id
    )
    await ctx.reply(
        escalation_text.escalated_confirmation(
            done.incident.id, done.level, done.last_level, done.recipients
        )
    )


async def _escalate(ctx: CommandContext, incident_id: str, command: EscalateIncident) -> None:
    await escalate_incident(ctx, incident_id, command.reason)


escalate = on_incident("incident.escalate", parse_escalate, _escalate)
