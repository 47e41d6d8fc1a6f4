"""The incident's wording in Slack (confirmations, cards, updates, notices, the war room), and
the pieces every sentence is made of: severity labels, dates, people and channels. Help and
usage lines are in help_text, lists in list_text, failures in error_text."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from bot.models import Incident, Severity
from bot.notify import EscalationShown
from bot.slack.escape import clip, escape_mrkdwn, topic_text

if TYPE_CHECKING:
    pass

SEVERITY_LABELS = {
    Severity.P0: ":red_circle: P0 Critical",
    Severity.P1: ":large_orange_circle: P1 High",
    Severity.P2: ":large_yellow_circle: P2 Medium",
    Severity.P3: ":large_blue_circle: P3 Low",
}


def severity_label(severity: Severity) -> str:
    return SEVERITY_LABELS[severity]


DRILL_MARK = "[DRILL] "


def drill_mark(incident: Incident) -> str:
    """What starts every message about a drill, so nobody takes it for a real incident."""
    return DRILL_MARK if incident.drill else ""


def slack_date(when: datetime) -> str:
    """A date every reader sees in their own time zone, with a UTC fallback."""
    fallback = when.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def user(user_id: str | None) -> str:
    if not user_id:
        return "nobody yet"
    if user_id == "chatops-bot":  # the bot's own scheduled work (automatic recovery)
        return "the bot"
    if user_id.startswith("S"):
        return f"<!subteam^{user_id}>"
    return f"<@{user_id}>"


def channel(channel_id: str) -> str:
    return f"<#{channel_id}>"


def contact(incident: Incident) -> str:
    if incident.channel_id:
        return channel(incident.channel_id)
    return user(incident.lead)


def next_update(incident: Incident) -> str:
    if not incident.is_open:
        return "None: the incident is resolved"
    if incident.next_update_due is None:
        return "No scheduled updates for this severity"
    return slack_date(incident.next_update_due)


def said(words: str) -> str:
    """What a person wrote (a title, a reason), as mrkdwn that shows it literally."""
    return escape_mrkdwn(words)


def declared_confirmation(
    incident: Incident, announce_channel: str, *, war_room: bool = False
) -> str:
    room = " and opening its war room" if war_room else ""
    return (
        f"{drill_mark(incident)}Declared *{incident.id}* ({incident.severity}): "
        f"{said(incident.title)}. "
        f"Announcing it in {channel(announce_channel)}{room}."
    )


def announcement_text(incident: Incident) -> str:
    """Top-level `text`: the notification and the screen-reader fallback."""
    return (
        f"{drill_mark(incident)}Incident Update: {said(incident.title)} | {incident.severity} "
        f"{incident.status.label} | {incident.id}"
    )


# -- the incident lifecycle ---------------------------------------------------------------

# The headline of a status update, by the change behind it.
UPDATE_HEADLINES = {
    "updated": "Incident Update",
    "resolved": "Incident Resolved",
    "reopened": "Incident Reopened",
    "severity_changed": "Severity Changed",
}
ROLE_LABELS = {
    "commander": "Commander",
    "tech-lead": "Tech lead",
    "comms-lead": "Comms lead",
    "sme": "SME",
}
TOPIC_MAX = 250  # Slack's limit for a channel topic


def eta(incident: Incident) -> str:
    if not incident.is_open:
        return "Resolved"
    if incident.eta_at is not None:
        shown = slack_date(incident.eta_at)
        # Kept by updates that gave none: once the incident outlived it, it is no promise.
        return f"{shown} (passed)" if incident.eta_at <= incident.updated_at else shown
    return incident.eta or "Unknown yet"


def acknowledged(incident: Incident) -> str:
    if incident.acknowledged_at is None:
        # "Not yet" on a resolved card read as a page still waiting for someone.
        return "Not yet" if incident.is_open else "Never (resolved first)"
    return f"{user(incident.acknowledged_by)} {slack_date(incident.acknowledged_at)}"


def roles_line(incident: Incident) -> str:
    """Everyone with a role other than the commander (who has a field of their own)."""
    held = [
        f"{label}: {user(incident.roles[role])}"
        for role, label in ROLE_LABELS.items()
        if role != "commander" and incident.roles.get(role)
    ]
    return " · ".join(held)


def card_text(incident: Incident) -> str:
    """Top-level `text` of an incident card (announcement, pinned summary)."""
    return (
        f"{drill_mark(incident)}{incident.id} ({incident.severity}, {incident.status.label}): "
        f"{said(incident.title)}"
    )


def update_text(incident: Incident, kind: str) -> str:
    headline = UPDATE_HEADLINES.get(kind, "Incident Update")
    return (
        f"{drill_mark(incident)}{headline}: {said(incident.title)} | {incident.severity} "
        f"{incident.status.label} | {incident.id}"
    )


def war_room_topic(incident: Incident) -> str:
    """Severity, status and commander, as the war room's topic (within Slack's 250)."""
    topic = (
        f"{drill_mark(incident)}{severity_label(incident.severity)} · {incident.status.label} · "
        f"Commander: {user(incident.commander)} · {incident.id}: {topic_text(incident.title)}"
    )
    return topic if len(topic) <= TOPIC_MAX else topic[: TOPIC_MAX - 1] + "…"


NOTICE_ICONS = {
    "acknowledged": ":eyes:",
    "assigned": ":bust_in_silhouette:",
    "noted": ":memo:",
    "escalated": ":rotating_light:",
    "paging_failed": ":warning:",
    "page_unreached": ":warning:",
    "paging_recovered": ":white_check_mark:",
}


def notice(kind: str, line: str, actor: str) -> str:
    """One line about a change; `line` is its timeline entry as mrkdwn (bot.slack.rich)."""
    icon = NOTICE_ICONS.get(kind, ":information_source:")
    if kind == "noted":
        return f"{icon} Note from {user(actor)}: {line}"
    return f"{icon} {line}"


def war_room_note(incident: Incident, announce_channel: str) -> str:
    if incident.channel_id:
        return f"Its war room is {channel(incident.channel_id)}."
    return f"Updates go to {channel(announce_channel)}."


def acknowledged_confirmation(incident: Incident) -> str:
    return f":white_check_mark: You acknowledged *{incident.id}*. The pages stop."


def already_acknowledged(incident: Incident) -> str:
    when = slack_date(incident.acknowledged_at) if incident.acknowledged_at else ""
    return (
        f"*{incident.id}* was already acknowledged by {user(incident.acknowledged_by)} "
        f"{when}; nothing changed."
    ).replace("  ", " ")


def update_refused(reason: str, message: str) -> str:
    """A submitted "Post update" form refused (the incident moved on since it opened): the
    reason, and the author's text back, since the form itself is gone."""
    quoted = "\n".join(f">{said(line)}" for line in message.splitlines())
    return f"{reason} Your update was not posted; here is what you wrote:\n{quoted}"


def update_confirmation(incident: Incident, announce_channel: str) -> str:
    where = channel(incident.channel_id or announce_channel)
    if incident.status.value == "resolved":
        return f":white_check_mark: *{incident.id}* is resolved. The update is going to {where}."
    return f"Posted your update on *{incident.id}* ({incident.status.label}) in {where}."


def published_confirmation(
    incident_id: str, *, newly_public: bool, updates: int, withdrawn: Sequence[int] = ()
) -> str:
    """The answer to `/incident publish`; `withdrawn`: the updates it left off."""
    counted = f"{updates} status update{'s' if updates != 1 else ''}"
    numbers = ", ".join(str(number) for number in withdrawn)
    plural = "s" if len(withdrawn) > 1 else ""
    left_off = (
        f" Update{plural} {numbers}, withdrawn, stay{'' if plural else 's'} off "
        f"(`/incident publish {incident_id} update N` puts one back)."
        if withdrawn
        else ""
    )
    if newly_public:
        return f"*{incident_id}* is on the public status page now, with {counted}.{left_off}"
    if updates:
        more = f"{updates} more status update{'s' if updates != 1 else ''}"
        return f"Published {more} of *{incident_id}* on the public status page.{left_off}"
    if withdrawn:
        return (
            f"*{incident_id}* and its status updates are already on the public status page, "
            f"but update{plural} {numbers}, withdrawn, stay{'' if plural else 's'} off "
            f"(`/incident publish {incident_id} update N` puts one back)."
        )
    return f"*{incident_id}* and all its status updates are already on the public status page."


# How much of a withdrawn update is quoted back: enough to see it was the right one.
WITHDRAWN_QUOTE_MAX = 80


def withdrawn_confirmation(incident_id: str, update: int | None, words: str = "") -> str:
    """The answer to `/incident unpublish`, quoting the start of a withdrawn update."""
    if update is None:
        return f"*{incident_id}* is off the public status page now, with all its status updates."
    first_line = words.splitlines()[0] if words.strip() else ""
    quoted = f" (“{said(clip(first_line, WITHDRAWN_QUOTE_MAX))}”)" if first_line else ""
    return f"Status update {update} of *{incident_id}*{quoted} is off the public status page now."


def restored_confirmation(incident_id: str, update: int, words: str = "") -> str:
    """The answer to `/incident publish ... update N`, quoting the start of the update."""
    first_line = words.splitlines()[0] if words.strip() else ""
    quoted = f" (“{said(clip(first_line, WITHDRAWN_QUOTE_MAX))}”)" if first_line else ""
    return f"Status update {update} of *{incident_id}*{quoted} is back on the public status page."


PUBLISHED_WITH_UPDATE = "It is on the public status page too."


def severity_confirmation(incident: Incident) -> str:
    return f"*{incident.id}* is now {severity_label(incident.severity)}."


def assigned_confirmation(incident: Incident, role: str, user_id: str) -> str:
    label = ROLE_LABELS.get(role, role)
    return f"{user(user_id)} is now {label} of *{incident.id}*."


def already_assigned(incident: Incident, role: str, user_id: str) -> str:
    label = ROLE_LABELS.get(role, role)
    return f"{user(user_id)} is already {label} of *{incident.id}*; nothing changed."


def noted_confirmation(incident: Incident) -> str:
    return f"Added your note to the timeline of *{incident.id}*."


def reopened_confirmation(incident: Incident) -> str:
    return f"*{incident.id}* is open again (INVESTIGATING)."


def war_room_confirmation(incident: Incident) -> str:
    if incident.channel_id:
        return (
            f"Running the set-up of {channel(incident.channel_id)} again "
            "(invites, topic, pinned summary)."
        )
    return f"Opening a war room for *{incident.id}*."


def update_resolved(incident: Incident) -> str:
    return f"*{incident.id}* is resolved. Use `/incident reopen {incident.id}` to work on it again."


def war_room_missing(incident: Incident) -> str:
    return (
        f"*{incident.id}* has no war room yet: its creation failed or is still queued. "
        "Retry below or with `/incident warroom`."
    )


def resolve_confirm_text(incident: Incident) -> str:
    return (
        f"Resolve {incident.id}? The escalation stops. To record what fixed it, use "
        "Post update with the status Resolved instead."
    )


def escalate_confirm_text(incident: Incident, escalation: EscalationShown | None = None) -> str:
    if escalation is None:
        return f"Page the next escalation level for {incident.id} now?"
    return (
        f"Page escalation level {escalation.level + 1} of {escalation.levels} "
        f"for {incident.id} now?"
    )


def escalation_field(escalation: EscalationShown | None) -> list[tuple[str, str]]:
    """The card's Escalation field (none when it is not known): how far the pages have
    gone, which is what the Escalate button moves on from."""
    if escalation is None:
        return []
    level, levels = escalation.level, escalation.levels
    if not levels:
        text = "No escalation levels"
    elif level >= levels:
        text = f"All {levels} levels paged"
    elif level:
        text = f"Level {level} of {levels} paged"
    else:
        text = f"Nobody paged yet ({levels} levels)"
    return [("Escalation", text)]


def resolved_by_button() -> str:
    """The resolution the Resolve button records. Stored and shown as the presser's text
    (escaped), so no mention here: the card names who resolved it (resolved_by)."""
    return "Resolved with the Resolve button (no summary given)."
