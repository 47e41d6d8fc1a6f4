"""What the bot says about escalation: pages, breached targets, reminders and on call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from bot.durations import humanize_seconds
from bot.models import Incident, Severity
from bot.notify import Page
from bot.policy.paging import PROVIDER_NAMES
from bot.slack.escape import escape_mrkdwn
from bot.slack.templates import channel, drill_mark, said, severity_label, slack_date, user

if TYPE_CHECKING:
    from bot.escalation.oncall import OnCall as OnCallRow
    from bot.paging.oncall import OnCallNow


BREACHED_TARGETS = {
    "acknowledge": ("acknowledgement", "acknowledged"),
    "resolve": ("resolution", "resolved"),
}
REVIEW_NAMES = {
    "review_preliminary": "preliminary review",
    "review_formal": "formal review",
}


def mentions(recipients: Sequence[str]) -> str:
    """Users and user groups as mentions that notify them (a page); a paging service that
    a level names (pagerduty, opsgenie) by its name."""
    return " ".join(PROVIDER_NAMES.get(target) or user(target) for target in recipients)


def _page_reason(page: Page) -> str:
    if page.by:
        # The reason is closed with a full stop, else it ran into "Acknowledge with ...".
        ends = "" if page.reason.rstrip().endswith((".", "!", "?")) else "."
        return f"{user(page.by)} escalated it by hand" + (
            f": {said(page.reason)}{ends}" if page.reason else "."
        )
    if page.waited:
        return f"Nobody has acknowledged it in {humanize_seconds(page.waited)}."
    if page.reason:
        # Paged early by the bot: the level before could reach nobody by DM.
        return f"Paged now: {said(page.reason)}."
    return f"It has just been {page.since}."


def page_text(incident: Incident, page: Page) -> str:
    """The page in the incident channel: it mentions everyone the level names. A page by
    hand of an acknowledged incident asks for help, not for an acknowledgement."""
    ask = (
        "It is acknowledged already: join in."
        if incident.acknowledged_at is not None
        else f"Acknowledge with `/incident ack {incident.id}`."
    )
    return (
        f":rotating_light: {drill_mark(incident)}*Escalation level {page.level}* for "
        f"*{incident.id}* "
        f"({severity_label(incident.severity)}): {said(incident.title)}\n"
        f"{mentions(page.recipients)}: you are paged. {_page_reason(page)} {ask}"
    )


def announced_page_text(incident: Incident) -> str:
    """The first level's page as the announcement carries it (Incident.announced_page), while
    nobody has acknowledged the open incident; "" otherwise."""
    if not incident.announced_page or not incident.is_open or incident.acknowledged_at:
        return ""
    return (
        f":rotating_light: {drill_mark(incident)}*Escalation level 1:* "
        f"{mentions(incident.announced_page)}: you are paged. "
        f"Acknowledge with `/incident ack {incident.id}`."
    )


def page_dm_text(incident: Incident, page: Page, channel_id: str) -> str:
    """The page as a direct message to one person (who acknowledged it, if someone has:
    a page by hand, the person is asked to join, not to acknowledge)."""
    if incident.acknowledged_at is not None:
        by = f" by {user(incident.acknowledged_by)}" if incident.acknowledged_by else ""
        ask = f"Join {channel(channel_id)}: it is acknowledged already{by}."
    else:
        ask = f"Join {channel(channel_id)} and acknowledge with `/incident ack {incident.id}`."
    return (
        f":rotating_light: {drill_mark(incident)}You are paged (escalation level {page.level}) "
        f"for *{incident.id}* "
        f"({severity_label(incident.severity)}): {said(incident.title)}. {_page_reason(page)} "
        f"{ask}"
    )


def breach_text(
    incident: Incident, *, target: str, within: str, due_at: datetime, mention: str | None
) -> str:
    """A missed acknowledgement or resolution target, posted once in the incident channel."""
    noun, verb = BREACHED_TARGETS.get(target, (target, target))
    who = f" {user(mention)}" if mention else ""
    return (
        f":hourglass: {drill_mark(incident)}*{incident.id}* ({severity_label(incident.severity)}) "
        f"missed its {noun} "
        f"target: it was not {verb} within {within} (due {slack_date(due_at)}).{who}"
    )


def reminder_text(incident: Incident, *, kind: str, due_at: datetime, within: str) -> str:
    """A reminder by direct message: a status update or a post-incident review is due."""
    if kind == "update_due":
        cadence = f" (every {within} for {incident.severity})" if within else ""
        where = f" in {channel(incident.channel_id)}" if incident.channel_id else ""
        return (
            f":memo: {drill_mark(incident)}A status update on *{incident.id}* "
            f"({said(incident.title)}) was due "
            f"{slack_date(due_at)}{cadence}. Post one with `/incident update {incident.id} "
            f"...`{where}."
        )
    name = REVIEW_NAMES.get(kind, "review")
    resolved = slack_date(incident.resolved_at) if incident.resolved_at else "recently"
    return (
        f":clipboard: {drill_mark(incident)}The {name} of *{incident.id}* "
        f"({said(incident.title)}) is due "
        f"{slack_date(due_at)}: {within} after it was resolved ({resolved})."
    )


def channel_reminder_text(
    incident: Incident, *, recipients: Sequence[str], kind: str, due_at: datetime, within: str
) -> str:
    """A reminder posted in the incident channel when no person leads the incident (the bot
    declared it and nobody has taken command): addressed to the first escalation level."""
    who = f"{mentions(recipients)}: " if recipients else ""
    return (
        f"{who}{reminder_text(incident, kind=kind, due_at=due_at, within=within)} Nobody "
        f"leads it yet: take command with `/incident assign {incident.id} commander @you`."
    )


def escalated_confirmation(
    incident_id: str, level: int, last_level: int, recipients: Sequence[str]
) -> str:
    """Ephemeral answer to `/incident escalate`: mentions here do not notify anyone."""
    top = " That is the last level." if level >= last_level else ""
    return (
        f"Escalated *{incident_id}* to level {level} of {last_level}: paging "
        f"{mentions(recipients)} now.{top}"
    )


def already_escalated(
    incident_id: str,
    *,
    seen_level: int,
    level: int,
    by: str | None,
    at: datetime | None,
    presser: str,
) -> str:
    """Ephemeral answer to an Escalate button pressed on a card whose level is out of date
    (someone else, the presser's own first click, or the schedule paged meanwhile): who
    moved it on, and nothing changed."""
    again = (
        "To page the next level as well, press Escalate on the refreshed card or use "
        f"`/incident escalate {incident_id}`."
    )
    if level > seen_level:
        if by is None:
            who = "by the schedule (nobody acknowledged)"
        else:
            who = "by you" if by == presser else f"by {user(by)}"
        when = f" {slack_date(at)}" if at else ""
        return (
            f"*{incident_id}* was already escalated to level {level} {who}{when}; "
            f"nothing changed. {again}"
        )
    return (
        f"*{incident_id}* stands at escalation level {level} now, not level {seen_level} as "
        f"the card you pressed showed (its escalation started again); nothing changed. {again}"
    )


def first_level(row: OnCallRow) -> tuple[str, ...]:
    """Whom a severity's first level pages: the one whose paging services' on-call are
    reached by direct message too."""
    return row.levels[0].recipients if row.levels else ()


def severity_changed(
    incident_id: str, *, seen: Severity, severity: Severity, level: int, levels: int
) -> str:
    """Ephemeral answer to an Escalate button pressed on a card from before a severity
    change: its next level would be the new severity's, other people than the card offered,
    so nothing was paged; where the escalation stands now."""
    if not levels:
        where = f"{severity.value} has no escalation levels"
    elif level >= levels:
        where = f"every level of {severity.value} ({levels}) is paged"
    elif level:
        where = f"it stands at level {level} of {levels} of {severity.value}"
    else:
        where = f"nobody is paged yet ({severity.value} has {levels} levels)"
    step = (
        f" To page {severity.value}'s level {level + 1}, press Escalate on the refreshed card "
        f"or use `/incident escalate {incident_id}`."
        if level < levels
        else ""
    )
    return (
        f"*{incident_id}* is {severity_label(severity)} now, not {severity_label(seen)} as the "
        f"card you pressed showed; nothing was paged. Escalation: {where}.{step}"
    )


def _unfound(answer: OnCallNow, email: str) -> str:
    """Why `email`, on call at a provider, is no Slack user in `/oncall`."""
    return "Slack could not look it up" if email in answer.lookup_failures else "no Slack user"


def oncall_text(
    rows: Sequence[OnCallRow],
    now: Sequence[OnCallNow] = (),
    gone: Mapping[str, str] | None = None,
) -> str:
    """`/oncall`: who is paged at each escalation level, per severity, with the targets;
    first, whoever the paging services say is on call now (`now`). `gone`: people the
    levels name that Slack says left, and their user groups that hold nobody ({user or group
    ID: "deactivated in Slack", say})."""
    gone = gone or {}
    lines = ["*On call* (each level is paged while an incident stays unacknowledged)"]
    for answer in now:
        # Only the severities whose first level names the service page its on-call.
        paged = [str(row.severity) for row in rows if answer.provider in first_level(row)]
        if not paged:
            continue
        name = PROVIDER_NAMES.get(answer.provider, answer.provider)
        people = [user(person) for person in answer.users]
        # An address with no Slack user (someone who left Slack) gets no direct message. Each
        # is worded by its own look-up: one failure made every address "could not look it up",
        # though Slack had answered that nobody has the others.
        people += [
            f"{escape_mrkdwn(email)} ({_unfound(answer, email)}: no DM)"
            for email in answer.unmatched
        ]
        who = ", ".join(people) or "nobody"
        if answer.lookup_error:
            who += f"; {escape_mrkdwn(answer.lookup_error[:200])}"
        if not answer.reachable and not answer.stale:
            failed = "refused to say who is on call" if answer.refused else "could not be reached"
            lines.append(
                f"• {name} {failed}, so the levels below stand as written: "
                f"{escape_mrkdwn(answer.error[:200])}"
            )
            continue
        late = " (as last known: it cannot be reached now)" if answer.stale else ""
        lines.append(
            f"• On call now at {name}{late}: {who}; paged with the first level of "
            + ", ".join(paged)
        )
    for row in rows:
        cadence = f", update every {row.update_every}" if row.update_every else ""
        lines.append(
            f"\n{severity_label(row.severity)}: acknowledge within {row.ack_within}, "
            f"resolve within {row.resolve_within}{cadence}"
        )
        if not row.levels:
            lines.append("• nobody is paged for this severity")
        for level in row.levels:
            when = "at once" if level.after == 0 else f"after {humanize_seconds(level.after)}"
            left = [
                f"{user(person)} is {gone[person]}" for person in level.recipients if person in gone
            ]
            # A page to them reaches nobody: the on-call reading this must know before 3 a.m.
            warning = f" ({'; '.join(left)}: no page reaches them)" if left else ""
            lines.append(f"• Level {level.level}, {when}: {mentions(level.recipients)}{warning}")
    return "\n".join(lines)
