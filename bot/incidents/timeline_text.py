"""The timeline line each lifecycle change writes, and the excerpt of a Slack message copied
to a timeline. Pure: the same facts always give the same text.

`<@U…>` mentions are kept as structured references; rendering and escaping happen at the
edge (bot/slack/).
"""

from __future__ import annotations

from bot.models import Actor, Incident, IncidentRole, mention
from bot.policy.paging import PROVIDER_NAMES
from bot.redact import redact_text

# Timeline text copied from a Slack message is cut to this many characters.
MESSAGE_EXCERPT_MAX = 1500


def declared(incident: Incident, actor: Actor) -> str:
    what = f"a DRILL at {incident.severity}" if incident.drill else str(incident.severity)
    return f"Declared {what} by {mention(actor.user_id)}: {incident.title}"


def acknowledged(actor: Actor, via: str, via_person: str) -> str:
    if not via:
        return f"Acknowledged by {mention(actor.user_id)}"
    where = PROVIDER_NAMES.get(via, via)
    if actor.is_system:
        # The provider's name for the person ends the line: their words, shown as text.
        return f"Acknowledged in {where} by {via_person}"
    return f"Acknowledged in {where} by {mention(actor.user_id)}"


def status_update(before: Incident, after: Incident, actor: Actor, message: str) -> str:
    moved = (
        f"{before.status.label} → {after.status.label}"
        if before.status is not after.status
        else after.status.label
    )
    return f"Update ({moved}) by {mention(actor.user_id)}: {message}"


def reopened(actor: Actor, reason: str) -> str:
    return f"Reopened by {mention(actor.user_id)}" + (f": {reason}" if reason else "")


def severity_changed(before: Incident, after: Incident, actor: Actor) -> str:
    return f"Severity {before.severity} → {after.severity} by {mention(actor.user_id)}"


def assigned(role: IncidentRole, user_id: str, actor: Actor) -> str:
    return f"<@{user_id}> is {role.value}, assigned by {mention(actor.user_id)}"


def war_room_requested(before: Incident, actor: Actor) -> str:
    if before.channel_id:
        return f"War room set-up run again by {mention(actor.user_id)}"
    return f"War room requested by {mention(actor.user_id)}"


def message_excerpt(text: str) -> str:
    """A Slack message's text as kept on a timeline: redacted, then cut."""
    # A pasted connection string must not be kept (or shown back) in the timeline. A
    # message may hold 40,000 characters: cut before redacting, with a margin so a secret
    # across the final cut is still whole enough to be masked.
    excerpt = redact_text(text.strip()[: MESSAGE_EXCERPT_MAX * 2])
    if len(excerpt) > MESSAGE_EXCERPT_MAX:
        excerpt = excerpt[: MESSAGE_EXCERPT_MAX - 1] + "…"
    return excerpt
