"""`/incident escalate [INC-ID] [reason]`: page the next escalation level now."""

from __future__ import annotations

from bot.escalation import AlreadyEscalated, SeverityChanged
from bot.incidents.parsing import parse_escalate
from bot.incidents.schemas import EscalateIncident
from bot.models import Severity
from bot.slack import escalation_text
from commands.context import CommandContext, on_incident


async def escalate_incident(
    ctx: CommandContext,
    incident_id: str,
    reason: str = "",
    *,
    seen_level: int | None = None,
    seen_severity: Severity | None = None,
) -> None:
    """Page the incident's next escalation level now (the subcommand and the card's button,
    which passes the level and severity its card showed: only that level moves on, and
    only while the severity is the one shown)."""
    try:
        done = await ctx.services.escalation.escalate(
            incident_id,
            ctx.actor,
            reason=reason,
            request_id=ctx.request_id,
            seen_level=seen_level,
            seen_severity=seen_severity,
        )
    except SeverityChanged as changed:
        args = {
            "incident_id": changed.incident.id,
            "via": "button",
            "severity_seen": changed.seen_severity.value,
            "severity": changed.severity.value,
            "level": changed.level,
        }
        await ctx.audit_refusal("incident.escalate", "refused: severity changed", args)
        await ctx.reply(
            escalation_text.severity_changed(
                changed.incident.id,
                seen=changed.seen_severity,
                severity=changed.severity,
                level=changed.level,
                levels=changed.levels,
            )
        )
        return
    except AlreadyEscalated as late:
        # Someone (or the schedule) was first: a refusal, on the record like the others.
        args = {"incident_id": late.incident.id, "via": "button", "level_seen": late.seen_level}
        await ctx.audit_refusal("incident.escalate", "refused: already escalated", args)
        await ctx.reply(
            escalation_text.already_escalated(
                late.incident.id,
                seen_level=late.seen_level,
                level=late.level,
                by=late.by,
                at=late.at,
                presser=ctx.actor.user_id,
            )
        )
        return
    await ctx.reply(
        escalation_text.escalated_confirmation(
            done.incident.id, done.level, done.last_level, done.recipients
        )
    )


async def _escalate(ctx: CommandContext, incident_id: str, command: EscalateIncident) -> None:
    await escalate_incident(ctx, incident_id, command.reason)


escalate = on_incident("incident.escalate", parse_escalate, _escalate)
