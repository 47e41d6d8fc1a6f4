"""The post-incident report as Markdown, in the runbook's template: Summary, Impact,
Timeline, Root cause, Resolution, Action items, Lessons learned (plus Prevention, and the
remediation runs once that work is wired). A pure function of ReportFacts."""

from __future__ import annotations

import re
from datetime import datetime

from bot import refs
from bot.durations import humanize_seconds
from bot.models import SYSTEM, TimelineEvent
from bot.reports.models import ReportFacts, latest_resolution

SECTIONS = (
    "Summary",
    "Impact",
    "Timeline",
    "Root cause",
    "Resolution",
    "Prevention",
    "Action items",
    "Lessons learned",
)
NOT_RECORDED = "_Not recorded yet (`/incident postmortem`)._"


def who(user_id: str | None) -> str:
    """A person as a readable handle; the bot's own actor (it declared the incident, or
    automatic recovery restarted something) as "the bot", since no one has that handle."""
    if not user_id:
        return "—"
    return "the bot" if user_id == SYSTEM.user_id else f"@{user_id}"


REOPENED_NOTE = "_Reopened and resolved again: this is the last resolution._"


def text_block(text: str) -> str:
    """Free text a person wrote (stored plain, see bot.slack.escape) as Markdown: their own
    Markdown (lists, emphasis, code) kept, raw HTML made text. `<` starts every HTML tag and
    autolink, so `<img onerror=...>` in a title pasted into a wiki or a viewer that renders
    HTML would have run; `&lt;` shows the same character and starts nothing."""
    return _close_fence(text.replace("<", "&lt;"))


# A fenced code block's opening or closing line (CommonMark: up to 3 spaces, then 3 or more
# backticks or tildes; an opening's info string holds no backtick).
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")


def _close_fence(text: str) -> str:
    """The text with a code block it leaves open closed at its end: a pasted stack trace
    after an unclosed ``` turned every later section of the report into code."""
    opened = ""
    for line in text.split("\n"):
        found = _FENCE.fullmatch(line)
        if found is None:
            continue
        fence, rest = found[1], found[2]
        if not opened:
            if not (fence[0] == "`" and "`" in rest):
                opened = fence
        elif fence[0] == opened[0] and len(fence) >= len(opened) and not rest.strip():
            opened = ""
    return f"{text}\n{opened}" if opened else text


def cell(text: str) -> str:
    """Free text as a table cell or a list item's value: on one line, `|` escaped."""
    # One line: no code block to close (text_block would add a fence to a cell's text).
    return text.replace("<", "&lt;").replace("|", "\\|").replace("\n", " ")


def timeline_cell(event: TimelineEvent) -> str:
    """A timeline entry as a table cell: people, channels and groups as handles; a channel
    whose name the row keeps (the war room it opened) by that name, as a file's reader has
    no Slack to turn `#C0...` into one."""
    channel, name = event.data.get("channel"), event.data.get("name")

    def named(ref: refs.Ref) -> str:
        if isinstance(ref, refs.Channel) and ref.channel_id == channel and isinstance(name, str):
            return f"#{name}"
        return refs.handle(ref)

    return cell(refs.plain(refs.of_event(event), named))


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def _since(start: datetime, end: datetime | None) -> str:
    if end is None:
        return "—"
    return humanize_seconds(max(0.0, (end - start).total_seconds()))


def _target(due: datetime | None, done: datetime | None, now: datetime) -> str:
    if due is None:
        return ""
    missed = (done or now) > due
    # Not done and not yet due: a draft's target still lies ahead, neither met nor missed.
    verdict = "missed" if missed else "met" if done is not None else "not yet due"
    return f" (target {when(due)}: {verdict})"


def render(facts: ReportFacts) -> str:
    """The report's Markdown text."""
    incident, post = facts.incident, facts.postmortem
    drill = "[DRILL] " if incident.drill else ""  # a practice run, never taken for real
    lines = [f"# {drill}Post-incident report: {incident.id} — {cell(incident.title)}", ""]
    if incident.is_open:
        lines += [
            f"> **This incident is still open** ({incident.status.label}): this report is a "
            f"draft as of {when(facts.generated_at)}.",
            "",
        ]
    roles = {role: user for role, user in sorted(incident.roles.items()) if role != "commander"}
    working = (
        f" ({humanize_seconds(facts.working_seconds)} in working hours)"
        if facts.working_seconds is not None
        else ""
    )
    duration = _since(facts.started_at, facts.ended_at)
    acknowledged = when(facts.first_acknowledged_at)
    if facts.first_acknowledged_at is None and facts.first_resolved_at is not None:
        acknowledged = "not acknowledged: resolved first"
    lines += [
        "## Summary",
        "",
        "| | |",
        "|---|---|",
        f"| Incident | {incident.id} |",
        f"| Title | {cell(incident.title)} |",
        f"| Severity | {incident.severity} |",
        f"| Status | {incident.status.label} |",
        f"| Start (impact began) | {when(facts.started_at)} |",
        f"| Detection | {when(post.detected_at)} |",
        f"| Declared | {when(incident.declared_at)} by {who(incident.declared_by)} |",
        f"| Acknowledged | {acknowledged}"
        f"{_target(facts.ack_due_at, facts.acknowledgement_wait_ended_at, facts.generated_at)}"
        " |",
        f"| End (resolved) | {when(facts.ended_at)}"
        f"{_target(facts.resolve_due_at, facts.ended_at, facts.generated_at)} |",
        f"| Duration | {duration if facts.ended_at else 'ongoing'}{working} |",
        f"| Time to acknowledge | {_since(incident.declared_at, facts.first_acknowledged_at)} |",
        f"| Time to resolve | {_since(incident.declared_at, facts.ended_at)} |",
        f"| Commander | {who(incident.commander)} |",
    ]
    for role, user in roles.items():
        lines.append(f"| {role.replace('-', ' ').title()} | {who(user)} |")
    lines += [
        "",
        "## Impact",
        "",
        f"- **Affected services:** {cell(', '.join(incident.services)) or '—'}",
        f"- **Affected users:** {cell(post.affected_users) or '—'}",
        f"- **Data impact:** {cell(post.data_impact) or '—'}",
        f"- **Impact statement:** {cell(incident.impact) or '—'}",
        "",
        "## Timeline",
        "",
        "| Time (UTC) | Event |",
        "|---|---|",
    ]
    lines += [f"| {when(e.at)} | {timeline_cell(e)} |" for e in facts.timeline]
    reopenings = [e.at for e in facts.timeline if e.kind == "reopened"]
    resolution = latest_resolution(incident, post, reopenings[-1] if reopenings else None)
    # A reopened incident's fix that held is the last one; the report says it was reopened.
    held = ["", REOPENED_NOTE] if reopenings and resolution and not incident.is_open else []
    lines += [
        "",
        "## Root cause",
        "",
        text_block(post.root_cause) or NOT_RECORDED,
        "",
        "## Resolution",
        "",
        text_block(resolution) or NOT_RECORDED,
        *held,
        "",
        "## Prevention",
        "",
        text_block(post.prevention) or NOT_RECORDED,
        "",
        "## Action items",
        "",
    ]
    if facts.action_items:
        lines += ["| # | Item | Owner | Due | Status |", "|---|---|---|---|---|"]
        for item in facts.action_items:
            status = f"closed {when(item.closed_at)}" if item.closed_at else "open"
            if item.is_open and item.due_at < facts.generated_at:
                status = "open, **overdue**"
            lines.append(
                f"| {item.id} | {cell(item.text)} | {who(item.owner)} | "
                f"{item.due_at.astimezone(facts.zone).strftime('%Y-%m-%d')} | {status} |"
            )
    else:
        lines.append("_None recorded yet (`/incident postmortem`)._")
    lines += ["", "## Lessons learned", "", text_block(post.lessons) or NOT_RECORDED, ""]
    if facts.remediations is not None:
        lines += ["## Remediation runs", ""]
        if not facts.remediations:
            lines.append("_No remediation was run._")
        for run in facts.remediations:
            approvers = ", ".join(who(a) for a in run.approvers) or "—"
            lines.append(
                f"- {cell(run.action)} on {cell(run.target)}, requested by {who(run.requested_by)},"
                f" approved by {approvers}: {cell(run.outcome)} ({when(run.finished_at)})"
            )
        lines.append("")
    lines.append(f"_Generated {when(facts.generated_at)} by chatops-bot._")
    return "\n".join(lines) + "\n"
