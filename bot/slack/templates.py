"""Every user-facing sentence the bot says in Slack, in one place."""

from __future__ import annotations

from datetime import datetime

from bot.models import Incident, Severity

SEVERITY_LABELS = {
    Severity.P0: ":red_circle: P0 Critical",
    Severity.P1: ":large_orange_circle: P1 High",
    Severity.P2: ":large_yellow_circle: P2 Medium",
    Severity.P3: ":large_blue_circle: P3 Low",
}

USAGE = {
    "declare": "`/incident declare <P0|P1|P2|P3> <title>` (for example `/incident declare P1 "
    "Checkout API returns 502`)",
}

HELP = """*Incident commands*
• `/incident declare <P0|P1|P2|P3> <title>`: declare an incident and announce it
• `/incident help`: this list
Severities: P0 critical (outage, data loss, breach), P1 high (major feature down), \
P2 medium (minor feature, moderate impact), P3 low (cosmetic)."""


def severity_label(severity: Severity) -> str:
    return SEVERITY_LABELS[severity]


def slack_date(when: datetime) -> str:
    """A date every reader sees in their own time zone, with a UTC fallback."""
    fallback = when.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def user(user_id: str | None) -> str:
    if not user_id:
        return "nobody yet"
    if user_id.startswith("S"):
        return f"<!subteam^{user_id}>"
    return f"<@{user_id}>"


def channel(channel_id: str) -> str:
    return f"<#{channel_id}>"


def contact(incident: Incident) -> str:
    if incident.channel_id:
        return channel(incident.channel_id)
    return user(incident.commander or incident.declared_by)


def next_update(incident: Incident) -> str:
    if not incident.is_open:
        return "None: the incident is resolved"
    if incident.next_update_due is None:
        return "No scheduled updates for this severity"
    return slack_date(incident.next_update_due)


def usage(command: str, problem: str = "") -> str:
    lead = f"{problem} " if problem else ""
    return f"{lead}Usage: {USAGE.get(command, '`/incident help`')}"


def unknown_subcommand(name: str) -> str:
    return f"I don't know `/incident {name}`. Try `/incident help` for the list."


def declared_confirmation(incident: Incident, announce_channel: str) -> str:
    return (
        f"Declared *{incident.id}* ({incident.severity}): {incident.title}. "
        f"Announcing it in {channel(announce_channel)}."
    )


def announcement_text(incident: Incident) -> str:
    """Top-level `text`: the notification and the screen-reader fallback."""
    return (
        f"Incident Update: {incident.title} | {incident.severity} "
        f"{incident.status.label} | {incident.id}"
    )


STEP_DESCRIPTIONS = {
    "announce": "post its announcement in {target}",
}

ERROR_ADVICE = {
    "channel_not_found": "Check that the channel exists and that I am invited to it.",
    "not_in_channel": "Invite me to the channel.",
    "is_archived": "The channel is archived; unarchive it or pick another.",
    "missing_scope": "My Slack app lacks a permission; an admin must reinstall it.",
    "user_not_found": "That person is not in this workspace.",
}


def step_failed(incident: Incident, step: str, target: str | None, error: str) -> str:
    where = ""
    if target:
        where = channel(target) if target[:1] in "CG" else user(target)
    what = STEP_DESCRIPTIONS.get(step, step.replace("_", " ")).format(target=where)
    advice = ERROR_ADVICE.get(error, "")
    return (
        f":warning: *{incident.id}* stands, but I could not {what} (`{error}`). {advice}".rstrip()
    )


def store_unavailable() -> str:
    return (
        ":warning: I can't reach my database right now, so nothing was changed. "
        "Please try again in a moment."
    )


def duplicate_request() -> str:
    return "That request was already handled; nothing was changed."


def not_allowed(reason: str) -> str:
    return f":no_entry: {reason}"


def internal_error() -> str:
    return ":warning: Something went wrong on my side and nothing was changed. It is logged."
