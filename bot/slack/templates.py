"""Every user-facing sentence the bot says in Slack, in one place."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from bot.models import Incident, IncidentPage, Severity
from bot.slack.escape import escape_mrkdwn, said_at_end, topic_text
from bot.text import visible

if TYPE_CHECKING:
    pass

SEVERITY_LABELS = {
    Severity.P0: ":red_circle: P0 Critical",
    Severity.P1: ":large_orange_circle: P1 High",
    Severity.P2: ":large_yellow_circle: P2 Medium",
    Severity.P3: ":large_blue_circle: P3 Low",
}

# Usage lines show `<title>` and `<P0|P1>` literally: escaped like any text (see escape.py).
_USAGE_TEXT = {
    "declare": "`/incident declare <P0|P1|P2|P3> <title>` (for example `/incident declare P1 "
    "Checkout API returns 502`)",
    "ack": "`/incident ack [INC-ID]`",
    "update": "`/incident update [INC-ID] <investigating|identified|monitoring|resolved> "
    "<message> [eta <duration>] [impact <text>]` (for example `/incident update identified "
    "Bad deploy of checkout eta 30m impact EU card payments fail`)",
    "severity": "`/incident severity [INC-ID] <P0|P1|P2|P3>`",
    "assign": "`/incident assign [INC-ID] <commander|tech-lead|comms-lead|sme> <@person>`",
    "note": "`/incident note [INC-ID] <text>`",
    "resolve": "`/incident resolve [INC-ID] <summary of the fix>`",
    "reopen": "`/incident reopen [INC-ID] [reason]`",
    "list": "`/incident list [open|all|drills] [page N]` (50 a page: `/incident list all page 2`)",
    "catchup": "`/incident catchup [INC-ID]`",
    "drill": "`/incident drill <P0|P1|P2|P3> [<service>:] <scenario>` (for example `/incident "
    "drill P1 checkout: database failover`)",
    "show": "`/incident show [INC-ID]`",
    "timeline": "`/incident timeline [INC-ID]`",
    "warroom": "`/incident warroom [INC-ID]`",
    "publish": "`/incident publish [INC-ID]` (the incident and its status updates so far, "
    "on the public status page)",
    "escalate": "`/incident escalate [INC-ID] [reason]` (the ID may be left out in the "
    "incident's own channel)",
    "oncall": "`/oncall [P0|P1|P2|P3]`",
    "report": "`/incident report [INC-ID]`",
    "postmortem": "`/incident postmortem [INC-ID]`",
    "actions": "`/incident actions [INC-ID]`",
    "stats": "`/incident stats [days]` (1 to 366; 30 when left out)",
    "diagnose": "`/diagnose <service> [check ...]`",
    "remediate": "`/remediate <action> <service> [key=value ...]` (`/remediate help` lists"
    " the actions)",
    "help": "`/incident help` lists every command",
}
USAGE = {command: escape_mrkdwn(line) for command, line in _USAGE_TEXT.items()}

HELP_TEXT = """*Incident commands* (in an incident's war room the INC-ID may be left out)
• `/incident declare <P0|P1|P2|P3> <title>`: declare an incident and announce it \
(`/incident declare` alone opens a form)
• `/incident ack [INC-ID]`: acknowledge it (stops the pages)
• `/incident update [INC-ID] <investigating|identified|monitoring|resolved> <message> \
[eta <duration>] [impact <text>]`: post a status update
• `/incident severity [INC-ID] <P0|P1|P2|P3>`: change the severity
• `/incident assign [INC-ID] <commander|tech-lead|comms-lead|sme> <@person>`: give a role
• `/incident note [INC-ID] <text>`: add a note to the timeline
• `/incident resolve [INC-ID] <summary>` · `/incident reopen [INC-ID] [reason]`
• `/incident list [open|all|drills] [page N]` · `/incident show [INC-ID]` · \
`/incident timeline [INC-ID]`
• `/incident catchup [INC-ID]`: where it stands, in a dozen lines (only you see it)
• `/incident drill <P0|P1|P2|P3> [<service>:] <scenario>`: a practice incident, marked DRILL
• `/incident warroom [INC-ID]`: open the war room, or retry its set-up after a failure
• `/incident escalate [INC-ID] [reason]`: page the next escalation level now
• `/incident publish [INC-ID]`: put the incident and its status updates so far on the \
public status page (notes, roles and diagnoses never go there)
• `/incident report [INC-ID]`: share the post-incident report (Markdown file)
• `/incident postmortem [INC-ID]`: record root cause, lessons and action items
• `/incident actions [INC-ID]`: list action items (close them with their button)
• `/incident stats [days]`: MTTA, MTTR, MTTD and breaches per severity, with a chart
• `/oncall [P0|P1|P2|P3]`: who is paged at each escalation level
• `/incident help`: this list
Severities: P0 critical (outage, data loss, breach), P1 high (major feature down), \
P2 medium (minor feature, moderate impact), P3 low (cosmetic)."""
HELP = escape_mrkdwn(HELP_TEXT)


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


def usage(command: str, problem: str = "") -> str:
    """`problem` is plain text (it may quote what the user typed); the usage line follows."""
    lead = f"{escape_mrkdwn(visible(problem))} " if problem else ""
    return f"{lead}Usage: {USAGE.get(command, USAGE['help'])}"


def said(words: str) -> str:
    """What a person wrote (a title, a reason), as mrkdwn that shows it literally."""
    return escape_mrkdwn(words)


def unknown_subcommand(name: str) -> str:
    shown = escape_mrkdwn(visible(name[:40]))
    return f"I don't know `/incident {shown}`. Try `/incident help` for the list."


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


STEP_DESCRIPTIONS = {
    "announce": "post its announcement in {target}",
    "create_war_room": "create its war room {target}",
    "invite": "invite {target} to its war room",
    "expand_group": "read the members of {target} to invite them",
    "post_summary": "post its summary in {target}",
    "pin_summary": "pin its summary in {target}",
    "refresh_summary": "update its summary and topic in {target}",
    "post_update": "post its status update in {target}",
    "post_notice": "post a notice in {target}",
}
# Steps `/incident warroom` runs again.
WAR_ROOM_STEPS = {
    "create_war_room",
    "invite",
    "expand_group",
    "post_summary",
    "pin_summary",
    "refresh_summary",
}

ERROR_ADVICE = {
    "channel_not_found": "Check that the channel exists and that I am invited to it.",
    "not_in_channel": "Invite me to the channel.",
    "is_archived": "The channel is archived; unarchive it or pick another.",
    "missing_scope": "My Slack app lacks a permission; an admin must reinstall it.",
    "user_not_found": "That person is not in this workspace.",
    "name_taken": "Every channel name I tried is taken; archive or rename one of them.",
    "restricted_action": "Workspace settings do not let me create channels; ask an admin.",
    "user_is_restricted": "Guests can only be added to channels by an admin.",
    "user_is_ultra_restricted": "Single-channel guests cannot be added to another channel.",
    "no_such_subteam": "That user group does not exist any more; fix the policy.",
}


def step_failed(incident: Incident, step: str, target: str | None, error: str) -> str:
    where = ""
    if target:
        if target.startswith("#"):
            where = f"`{target}`"  # a channel name: the channel may not exist to link to
        else:
            where = channel(target) if target[:1] in "CG" else user(target)
    what = STEP_DESCRIPTIONS.get(step, step.replace("_", " ")).format(target=where)
    what = " ".join(what.split())  # no double space when there is no target
    advice = ERROR_ADVICE.get(error, "")
    if step in WAR_ROOM_STEPS:
        advice = f"{advice} Fix it, then run `/incident warroom {incident.id}`.".strip()
    return (
        f":warning: *{incident.id}* stands, but I could not {what} (`{error}`). {advice}".rstrip()
    )


def store_unavailable() -> str:
    return (
        ":warning: I can't reach my database right now, so nothing was changed. "
        "Please try again in a moment."
    )


def store_busy() -> str:
    # Load, not an outage: the database is up, the request waited its turn and ran out of time.
    return (
        ":hourglass: I'm handling more requests than my database can take right now and "
        "yours waited too long, so nothing was changed. Please try again in a minute."
    )


def done_unconfirmed() -> str:
    # The change committed; something after it failed (the answer itself, a later step).
    return (
        ":white_check_mark: That went through: your request is recorded. Something failed"
        " after it, so I could not confirm the details here. Please don't send it again;"
        " `/incident list` shows where things stand."
    )


def outcome_unknown() -> str:
    # A COMMIT was sent and its answer lost, or a later step failed: whether it stands is
    # not known, so the person must not be told that nothing changed.
    return (
        ":warning: I lost track of your request while saving it, so I can't tell whether it"
        " was recorded. Check `/incident list` before you try again."
    )


def duplicate_request() -> str:
    return "That request was already handled; nothing was changed."


def not_allowed(reason: str) -> str:
    return f":no_entry: {reason}"


def internal_error() -> str:
    return ":warning: Something went wrong on my side and nothing was changed. It is logged."


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
        return slack_date(incident.eta_at)
    return incident.eta or "Unknown yet"


def acknowledged(incident: Incident) -> str:
    if incident.acknowledged_at is None:
        return "Not yet"
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
    "paging_recovered": ":white_check_mark:",
}


def notice(kind: str, text: str, actor: str, said_: str = "") -> str:
    """One line about a change; `text` is its timeline entry, `said_` the person's words."""
    icon = NOTICE_ICONS.get(kind, ":information_source:")
    if kind == "noted":
        return f"{icon} Note from {user(actor)}: {said_at_end(text, said_)}"
    return f"{icon} {said_at_end(text, said_)}"


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


def update_confirmation(incident: Incident, announce_channel: str) -> str:
    where = channel(incident.channel_id or announce_channel)
    if incident.status.value == "resolved":
        return f":white_check_mark: *{incident.id}* is resolved. The update is going to {where}."
    return f"Posted your update on *{incident.id}* ({incident.status.label}) in {where}."


def published_confirmation(incident_id: str, *, newly_public: bool, updates: int) -> str:
    """The answer to `/incident publish`."""
    counted = f"{updates} status update{'s' if updates != 1 else ''}"
    if newly_public:
        return f"*{incident_id}* is on the public status page now, with {counted}."
    if updates:
        more = f"{updates} more status update{'s' if updates != 1 else ''}"
        return f"Published {more} of *{incident_id}* on the public status page."
    return f"*{incident_id}* and all its status updates are already on the public status page."


PUBLISHED_WITH_UPDATE = "It is on the public status page too."


def severity_confirmation(incident: Incident) -> str:
    return f"*{incident.id}* is now {severity_label(incident.severity)}."


def assigned_confirmation(incident: Incident, role: str, user_id: str) -> str:
    label = ROLE_LABELS.get(role, role)
    return f"{user(user_id)} is now {label} of *{incident.id}*."


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


# Each form by name: what it is called, and what to do when it cannot open.
_FORMS = {
    "declare": (
        "declaration form",
        "Declare with `/incident declare &lt;P0|P1|P2|P3&gt; &lt;title&gt;` instead.",
    ),
    "update": ("update form", "Use `/incident update` instead."),
    "postmortem": ("postmortem form", "Try `/incident postmortem` again in a moment."),
}


def form_failed(form: str, error: str) -> str:
    """A modal that Slack would not open: which one, why, and what to do instead."""
    name, instead = _FORMS[form]
    return f"I could not open the {name} (`{escape_mrkdwn(error)}`). {instead}"


def update_resolved(incident: Incident) -> str:
    return f"*{incident.id}* is resolved. Use `/incident reopen {incident.id}` to work on it again."


def list_title(page: IncidentPage) -> str:
    if page.drills:
        if page.total == 0:
            return "No drills yet."
        which = "Drills (left out of the statistics and the App Home)"
    elif page.total == 0:
        return "No open incidents." if page.open_only else "No incidents yet."
    else:
        which = "Open incidents" if page.open_only else "Incidents"
    if page.pages == 1:
        return f"{which} ({page.total})"
    return f"{which} ({page.total}), page {page.page} of {page.pages}"


def _list_command(page: IncidentPage, number: int) -> str:
    which = " drills" if page.drills else " open" if page.open_only else " all"
    return f"`/incident list{which} page {number}`"


def list_more(page: IncidentPage) -> str | None:
    """What the page leaves out and how to see it; None when it shows the end of the list."""
    if page.total and not page.incidents:
        return (
            f"Page {page.page} is past the end: {page.total} incidents make {page.pages} "
            f"page{'s' if page.pages > 1 else ''}. The last is {_list_command(page, page.pages)}."
        )
    if page.after == 0:
        return None
    return f"{page.after} more: {_list_command(page, page.page + 1)}."


def list_line(incident: Incident) -> str:
    where = f" · {channel(incident.channel_id)}" if incident.channel_id else ""
    return (
        f"{drill_mark(incident)}{severity_label(incident.severity)} *{incident.id}* "
        f"{incident.status.label}: "
        f"{said(incident.title)} · declared {slack_date(incident.declared_at)}{where}"
    )


def timeline_title(incident: Incident, count: int) -> str:
    return f"Timeline of {incident.id} ({count} entries)"


def timeline_line(at: datetime, actor: str, text: str, said_: str = "") -> str:
    who = "" if actor == "chatops-bot" else f" {user(actor)}"
    return f"{slack_date(at)}{who} · {said_at_end(text, said_)}"


def timeline_cut(hidden: int) -> str:
    return f"… and {hidden} earlier entries, in the audit export and the incident report."


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


def escalate_confirm_text(incident: Incident) -> str:
    return f"Page the next escalation level for {incident.id} now?"


def resolved_by_button(user_id: str) -> str:
    return f"Resolved by {user(user_id)} with the Resolve button."
