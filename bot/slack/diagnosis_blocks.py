"""Slack wording and Block Kit for `/diagnose`: the summary, the evidence thread, the buttons.

Everything a diagnosed system returned (statements, log lines, event messages) is redacted
and escaped here before it becomes mrkdwn. Limits: 50 blocks a message, 3,000 characters a
section, 75 characters a button; what does not fit in the summary goes to the thread.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bot.catalog import NO_SERVICES
from bot.diagnostics.findings import CheckRun, Finding, Grade, Report, Suggestion
from bot.diagnostics.runs import CLI_ACTOR_PREFIX, RunningDiagnosis
from bot.diagnostics.text import checks_run
from bot.models import SYSTEM
from bot.redact import redact_text
from bot.slack.escape import clip_mrkdwn, escape_mrkdwn
from bot.slack.templates import slack_date
from bot.slack_ids import is_channel_id

Block = dict[str, Any]

DIAGNOSE_ACTION = "incident_diagnose"  # the button on an incident's summary card
SUGGESTION_ACTION = "diagnose_suggestion_{}"  # one per suggestion button (IDs must differ)
SUGGESTION_PATTERN = r"^diagnose_suggestion_\d+$"
SECTION_MAX = 3000
BLOCKS_MAX = 50
BUTTON_MAX = 75
VALUE_MAX = 2000  # of a button's value
THREAD_SECTIONS = 40  # sections per thread reply, well under the 50-block limit

GRADE_LABEL = {
    Grade.OK: ":large_green_circle: OK",
    Grade.WARN: ":large_yellow_circle: WARN",
    Grade.CRIT: ":red_circle: CRIT",
}
# Escaped: an unescaped `<service>` is a Slack link to "service", and the usage read
# "/diagnose  [check ...]" (see bot.slack.escape).
USAGE = escape_mrkdwn(
    "`/diagnose <service> [check ...]` (for example `/diagnose checkout postgres redis`)"
)


def _clean(text: str) -> str:
    """System or user text on its way into mrkdwn: secrets masked, markup neutralised."""
    return escape_mrkdwn(redact_text(text))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip_mrkdwn(text, SECTION_MAX)}}


def _context(text: str) -> Block:
    text = clip_mrkdwn(text, SECTION_MAX)
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def usage(services: Sequence[str], problem: str = "") -> str:
    names = ", ".join(f"`{escape_mrkdwn(s)}`" for s in services) or NO_SERVICES
    lead = f"{problem} " if problem else ""
    return f"{lead}Usage: {USAGE}. Services in the catalog: {names}."


def acked(service: str, checks: Sequence[str] = ()) -> str:
    """The run has started: the checks named, or every check of the service."""
    named = ", ".join(f"`{_clean(c[:40])}`" for c in checks[:10])
    what = f"the {named} checks run" if checks else "every check runs"
    return f"Diagnosing `{_clean(service[:40])}`: {what} now; results here shortly."


def already_running(running: RunningDiagnosis) -> str:
    """A second asker of a run under way: nothing new starts; who, when, and where to look."""
    if running.actor == SYSTEM.user_id:
        who = "the bot"
    elif running.on_terminal:  # not a Slack user: a mention would read "@unknown"
        login = _clean(running.actor.removeprefix(CLI_ACTOR_PREFIX)[:40])
        who = f"`{login}` with `chatops-bot diagnose`"
    else:
        who = f"<@{running.actor}>"
    what = f"`{_clean(running.service[:40])}`"
    if running.checks:
        what += " (" + ", ".join(f"`{_clean(c[:40])}`" for c in running.checks[:10]) + ")"
    if running.on_terminal:
        where = "its result is printed on that terminal, not posted in Slack"
    elif running.channel_id and is_channel_id(running.channel_id):
        where = f"its result will be posted in <#{running.channel_id}>"
    elif running.channel_id:  # a direct message: only its two members can see it
        where = f"its result goes to the direct message {who} asked from"
    else:
        where = f"its result goes to {who} alone (asked from the App Home)"
    return (
        f"A diagnosis of {what} is already running (started by {who},"
        f" since {slack_date(running.started_at)}); {where}. No second run was started."
    )


def counts(report: Report) -> str:
    parts = [f"{report.count(g)} {g.name}" for g in (Grade.CRIT, Grade.WARN, Grade.OK)]
    return ", ".join(p for p in parts if not p.startswith("0 ")) or "no findings"


def summary_text(report: Report) -> str:
    """The notification text (and screen-reader fallback) of the summary."""
    return f"Diagnosis of {_clean(report.service)}: {report.grade.name} ({counts(report)})"


def _finding_line(finding: Finding) -> str:
    line = f"{GRADE_LABEL[finding.grade]} *{_clean(finding.title)}* · {_clean(finding.summary)}"
    if finding.threshold:
        line += f" _({_clean(finding.threshold)})_"
    return line


def _chunks(lines: Sequence[str], limit: int = SECTION_MAX - 100) -> list[str]:
    chunks: list[str] = []
    current = ""
    for line in lines:
        line = clip_mrkdwn(line, limit)  # escaped already: cut whole entities only
        if current and len(current) + len(line) + 1 > limit:
            chunks.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
    if current:
        chunks.append(current)
    return chunks


def suggestion_value(service: str, suggestion: Suggestion, incident_id: str | None = None) -> str:
    """A suggestion button's value; `i` names the incident the diagnosis was run for, so the
    request it raises is that incident's even outside a war room (the channel cannot say)."""
    value: dict[str, Any] = {"s": service, "a": suggestion.action, "p": dict(suggestion.params)}
    if incident_id:
        value["i"] = incident_id
    return json.dumps(value, separators=(",", ":"))


def _runner(actor: str) -> str:
    # The bot runs a diagnosis by itself when an alert opens an incident (bot.alerts).
    return "the bot, on an alert" if actor == SYSTEM.user_id else f"<@{actor}>"


def summary_blocks(report: Report, *, actor: str, incident_id: str | None = None) -> list[Block]:
    """The one summary message: grade, each finding with its numbers and threshold, and the
    suggestions (best first) as buttons, naming `incident_id` when the run was for one; the
    evidence is in its thread."""
    blocks: list[Block] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": _clip(f"Diagnosis of {report.service}: {report.grade.name}", 150),
            },
        },
        _context(
            f"{GRADE_LABEL[report.grade]} · {counts(report)} · {checks_run(report)} in"
            f" {report.seconds:.1f} s · run by {_runner(actor)} · evidence in the thread"
        ),
    ]
    ordered = sorted(report.findings, key=lambda f: -f.grade)
    sections = _chunks([_finding_line(f) for f in ordered])
    room = BLOCKS_MAX - len(blocks) - 4  # suggestions text, buttons, note, divider
    if len(sections) > room:
        hidden = len(sections) - room + 1
        sections = [*sections[: room - 1], f"… {hidden} more sections of findings in the thread"]
    blocks += [_section(text) for text in sections]
    if report.suggestions:
        lines = [
            f"*{index}. {_clean(s.label)}*: would {_clean(s.would)}. _Because {_clean(s.because)}_"
            for index, s in enumerate(report.suggestions, 1)
        ]
        blocks.append({"type": "divider"})
        blocks.append(_section("*Suggested, best first*\n" + "\n".join(lines)))
        buttons = [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": _clip(s.label, BUTTON_MAX)},
                "action_id": SUGGESTION_ACTION.format(index),
                "value": value,
                **({"style": "primary"} if index == 0 else {}),
            }
            for index, s in enumerate(report.suggestions)
            # Never a value cut short (broken JSON: the click requests nothing); the advisor
            # keeps parameters within findings.PARAMS_MAX so that none is left out.
            if len(value := suggestion_value(report.service, s, incident_id)) <= VALUE_MAX
        ]
        if buttons:
            blocks.append(
                {"type": "actions", "block_id": "diagnose_suggestions", "elements": buttons}
            )
    return blocks[:BLOCKS_MAX]


def _run_evidence(run: CheckRun) -> list[str]:
    lines: list[str] = []
    for finding in run.findings:
        if not finding.evidence:
            continue
        lines.append(f"*{_clean(finding.title)}* ({finding.grade.name})")
        lines += [f"• `{_clean(_clip(item, 600))}`" for item in finding.evidence]
    return lines


def evidence_messages(report: Report) -> list[tuple[str, list[Block]]]:
    """Thread replies: the evidence of every check that has some, in as many messages as the
    limits need. Each is (text, blocks)."""
    sections: list[str] = []
    for run in report.runs:
        lines = _run_evidence(run)
        if lines:
            sections += _chunks([f"*{_clean(run.name)}*", *lines])
    messages = []
    for start in range(0, len(sections), THREAD_SECTIONS):
        part = sections[start : start + THREAD_SECTIONS]
        messages.append(
            (
                f"Evidence for the diagnosis of {_clean(report.service)}",
                [_section(text) for text in part],
            )
        )
    if not messages:
        # Said the same whatever the grade: "nothing stood out" beside a CRIT misleads.
        messages.append(
            (
                f"No evidence to show for {_clean(report.service)}.",
                [
                    _section(
                        "No statements, log lines or events were collected: the findings in "
                        "the summary are all there is."
                    )
                ],
            )
        )
    return messages


def suggestion_preview(would: str) -> str:
    """The answer to an advice button (bot.diagnostics.describe: "by hand: ...; nothing to
    run"). It said "Remediations are not enabled in this version of the bot", which they are."""
    done = would.removeprefix("by hand: ").removesuffix("; nothing to run")
    return (
        f"This suggestion is done by hand: {_clean(done)}. The bot has nothing to run for it,"
        " so nothing was changed."
    )


def not_recorded() -> str:
    return "The database is unavailable, so this diagnosis was not recorded in the audit log."


def post_failed(error: str) -> str:
    return (
        f"I could not post the diagnosis in this channel (Slack said `{escape_mrkdwn(error)}`);"
        " invite me, or run `/diagnose` in a channel I am in."
    )


def no_services(incident_id: str, services: Sequence[str]) -> str:
    names = ", ".join(f"`{escape_mrkdwn(s)}`" for s in services) or "none"
    return (
        f"{incident_id} names no service from the catalog. Run {USAGE}; the catalog has: {names}."
    )
