"""The lists in Slack: `/incident list` pages and an incident's timeline."""

from __future__ import annotations

from bot import refs
from bot.models import Incident, IncidentPage, TimelineEvent
from bot.slack import rich
from bot.slack.templates import channel, drill_mark, said, severity_label, slack_date, user


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
        pages = f"{page.pages} page{'s' if page.pages > 1 else ''}"
        counted = "1 incident makes" if page.total == 1 else f"{page.total} incidents make"
        return (
            f"Page {page.page} is past the end: {counted} {pages}. "
            f"The last is {_list_command(page, page.pages)}."
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


def timeline_line(event: TimelineEvent) -> str:
    who = "" if event.actor == "chatops-bot" else f" {user(event.actor)}"
    return f"{slack_date(event.at)}{who} · {rich.mrkdwn(refs.of_event(event), event.said)}"


def timeline_cut(hidden: int) -> str:
    return f"… and {hidden} earlier entries, in the audit export and the incident report."
