"""The timeline line each lifecycle change writes, and the excerpt of a Slack message copied
to a timeline. Pure: the same facts always give the same text.

People are structured references (bot.refs); each surface renders them, and escapes the
person's words, at its edge (bot/slack/rich.py for Slack).
"""

from __future__ import annotations

from bot.models import Actor, Incident, IncidentRole
from bot.policy.paging import PROVIDER_NAMES
from bot.redact import redact_text
from bot.refs import Person, Rich, text

# Timeline text copied from a Slack message is cut to this many characters.
MESSAGE_EXCERPT_MAX = 1500


def declared(incident: Incident, actor: Actor) -> Rich:
    what = f"a DRILL at {incident.severity}" if incident.drill else str(incident.severity)
    return text(f"Declared {what} by ", Person(actor.user_id), f": {incident.title}")


def acknowledged(actor: Actor, via: str, via_person: str) -> Rich:
    if not via:
        return text("Acknowledged by ", Person(actor.user_id))
    where = PROVIDER_NAMES.get(via, via)
    if actor.is_system:
        # The provider's name for the person ends the line: their words, shown as text.
        return text(f"Acknowledged in {where} by {via_person}")
    return text(f"Acknowledged in {where} by ", Person(actor.user_id))


def status_update(
    before: Incident, after: Incident, actor: Actor, message: str, *, published: bool = False
) -> Rich:
    moved = (
        f"{before.status.label} → {after.status.label}"
        if before.status is not after.status
        else after.status.label
    )
    public = ", published to the status page" if published else ""
    return text(f"Update ({moved}) by ", Person(actor.user_id), f"{public}: {message}")


def reopened(actor: Actor, reason: str) -> Rich:
    return text("Reopened by ", Person(actor.user_id), f": {reason}" if reason else "")


def severity_changed(before: Incident, after: Incident, actor: Actor) -> Rich:
    return text(f"Severity {before.severity} → {after.severity} by ", Person(actor.user_id))


def assigned(role: IncidentRole, user_id: str, actor: Actor) -> Rich:
    return text(Person(user_id), f" is {role.value}, assigned by ", Person(actor.user_id))


def war_room_requested(before: Incident, actor: Actor) -> Rich:
    if before.channel_id:
        return text("War room set-up run again by ", Person(actor.user_id))
    return text("War room requested by ", Person(actor.user_id))


def message_excerpt(text: str) -> str:
    """A Slack message's text as kept on a timeline: redacted, then cut."""
    # A pasted connection string must not be kept (or shown back) in the timeline. A
    # message may hold 40,000 characters: cut before redacting, with a margin so a secret
    # across the final cut is still whole enough to be masked.
    excerpt = redact_text(text.strip()[: MESSAGE_EXCERPT_MAX * 2])
    if len(excerpt) > MESSAGE_EXCERPT_MAX:
        excerpt = excerpt[: MESSAGE_EXCERPT_MAX - 1] + "…"
    return excerpt
