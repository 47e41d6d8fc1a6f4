"""The catch-up (bot.incidents.catchup) as an ephemeral Slack message: at most a dozen lines,
each bounded, so the whole stays within one section (3,000 characters) and fifteen lines."""

from __future__ import annotations

from typing import Any

from bot import refs
from bot.durations import humanize_seconds
from bot.incidents.catchup import Catchup, DiagnosisGrade
from bot.models import TimelineEvent
from bot.slack import rich
from bot.slack.blocks import section
from bot.slack.escape import escape_mrkdwn
from bot.slack.templates import (
    ROLE_LABELS,
    drill_mark,
    eta,
    severity_label,
    slack_date,
    user,
)

# Room for each piece of someone's words (a status, an item, a timeline line), so that the
# whole catch-up stays within a section's 3,000 characters.
WORDS_MAX = 120
NAME_MAX = 40  # an action, a service, an alert: names, not sentences
REMEDIATION_STATUS = {
    "requested": "awaiting approval",
    "approved": "approved",
    "running": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "denied": "denied",
    "expired": "expired unapproved",
    "unknown": "outcome unknown",
}


def _words(text: str, limit: int = WORDS_MAX) -> str:
    """Someone's words on one line, escaped, at most `limit` characters once escaped (an
    `&` takes five): cut whole characters, never inside an escape."""
    kept: list[str] = []
    size = 0
    for char in " ".join(text.split()):
        piece = escape_mrkdwn(char)
        if size + len(piece) > limit - 1:
            return "".join(kept) + "…"
        kept.append(piece)
        size += len(piece)
    return "".join(kept)


def _roles(catchup: Catchup) -> str:
    held = [
        f"{label} {user(catchup.incident.roles[role])}"
        for role, label in ROLE_LABELS.items()
        if catchup.incident.roles.get(role)
    ]
    return "Roles: " + (" · ".join(held) if held else "nobody holds a role yet")


def _last_update(catchup: Catchup) -> str:
    update = catchup.last_update
    when = f" · ETA {eta(catchup.incident)}"
    if update is None:
        return "Last update: none posted yet" + when
    said_part = update.said or update.text
    return f"Last update {slack_date(update.at)} by {user(update.actor)}: {_words(said_part)}{when}"


def _tried(catchup: Catchup) -> str:
    if not catchup.tried:
        return "Tried: no remediation yet"
    shown = []
    for request in catchup.tried:
        status = REMEDIATION_STATUS.get(request.status, request.status)
        outcome = f": {_words(request.outcome, NAME_MAX)}" if request.outcome else ""
        shown.append(
            f"#{request.id} {_words(request.action, NAME_MAX)} "
            f"{_words(request.service, NAME_MAX)} ({status}{outcome})"
        )
    more = catchup.tried_total - len(catchup.tried)
    return "Tried: " + "; ".join(shown) + (f"; {more} earlier" if more > 0 else "")


def _diagnosis(grade: DiagnosisGrade | None) -> str:
    if grade is None:
        return "Diagnosis: none run yet"
    problems = f" ({_words(', '.join(grade.problems[:4]), NAME_MAX * 2)})" if grade.problems else ""
    return (
        f"Diagnosis: {_words(grade.service, NAME_MAX)} graded *{grade.grade}*{problems} "
        f"{slack_date(grade.at)}"
    )


def _alerts(catchup: Catchup) -> str:
    if not catchup.alerts:
        return "Alerts firing: none recorded"
    shown = [
        _words(alert.name, NAME_MAX) + (f" since {slack_date(alert.since)}" if alert.since else "")
        for alert in catchup.alerts
    ]
    more = catchup.alerts_total - len(catchup.alerts)
    return (
        f"Alerts firing ({catchup.alerts_total}): "
        + ", ".join(shown)
        + (f" and {more} more" if more > 0 else "")
    )


def _items(catchup: Catchup) -> str:
    if not catchup.items:
        return "Open action items: none"
    shown = [
        f"{_words(item.text, NAME_MAX * 2)} ({user(item.owner)}, due {slack_date(item.due_at)})"
        for item in catchup.items
    ]
    more = catchup.items_total - len(catchup.items)
    return (
        f"Open action items ({catchup.items_total}): "
        + "; ".join(shown)
        + (f"; {more} more in `/incident actions`" if more > 0 else "")
    )


def catchup_lines(catchup: Catchup) -> list[str]:
    """The catch-up, line by line (at most 12)."""
    incident = catchup.incident
    state = "resolved after" if not incident.is_open else "open for"
    lines = [
        f"*{drill_mark(incident)}Catch-up on {incident.id}*: {_words(incident.title)}",
        f"{incident.status.label} · {severity_label(incident.severity)} · {state} "
        f"{humanize_seconds(catchup.open_seconds)} (declared {slack_date(incident.declared_at)})",
        _roles(catchup),
        _last_update(catchup),
        _tried(catchup),
        _diagnosis(catchup.diagnosis),
        _alerts(catchup),
        _items(catchup),
    ]
    if catchup.recent:
        lines.append("Most recent:")
        lines += ["• " + _recent(event) for event in catchup.recent]
    return lines


def _recent(event: TimelineEvent) -> str:
    """A timeline entry: its mentions kept as markup and the person's words escaped. Too
    long, the person's words are cut (a cut mention would not render); only when the bot's
    own words are too long already is all of it shown as cut words."""
    who = "" if event.actor == "chatops-bot" else f" {user(event.actor)}"
    rich_text = refs.of_event(event)
    shown = " ".join(rich.mrkdwn(rich_text, event.said).split())
    if len(shown) > WORDS_MAX:
        shown = _words(event.text)
        head = _head(rich_text, event.said)
        if head is not None and len(head) < WORDS_MAX // 2:
            shown = head + _words(event.said, WORDS_MAX - len(head))
    return f"{slack_date(event.at)}{who} · {shown}"


def _head(rich_text: refs.Rich, said: str) -> str | None:
    """The bot's own words before `said`, as mrkdwn on one line (None without `said`)."""
    if not said:
        return None
    try:
        head = refs.words(rich_text, said)
    except ValueError:
        return None
    mrkdwn = rich.mrkdwn(head)
    trail = " " if mrkdwn[-1:].isspace() else ""  # "by <@U1>: " keeps its space
    return " ".join(mrkdwn.split()) + trail


def catchup_text(catchup: Catchup) -> str:
    """The whole catch-up as mrkdwn (the message's `text`, read by notifications too)."""
    return "\n".join(catchup_lines(catchup))


def catchup_blocks(catchup: Catchup) -> list[dict[str, Any]]:
    return [section(catchup_text(catchup))]
