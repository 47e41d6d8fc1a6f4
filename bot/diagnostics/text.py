"""A diagnosis as plain text, for `chatops-bot diagnose` in a terminal."""

from __future__ import annotations

from bot.diagnostics.findings import Report
from bot.diagnostics.runs import CLI_ACTOR_PREFIX, RunningDiagnosis
from bot.models import SYSTEM
from bot.redact import redact_text
from bot.text import without_forbidden


def checks_run(report: Report) -> str:
    """`1 check`, `4 checks`: one per system of the catalog entry that was checked."""
    count = len(report.runs)
    return f"{count} check" if count == 1 else f"{count} checks"


def render(report: Report, *, evidence: bool = True) -> str:
    lines = [
        f"Diagnosis of {report.service}: {report.grade.name}"
        f" ({checks_run(report)} in {report.seconds:.1f} s)",
        "",
    ]
    for finding in sorted(report.findings, key=lambda f: -f.grade):
        limit = f"  [{finding.threshold}]" if finding.threshold else ""
        lines.append(f"{finding.grade.name:<4}  {finding.title}: {finding.summary}{limit}")
    if report.suggestions:
        lines += ["", "Suggested, best first (remediation is not enabled: nothing is run):"]
        for index, s in enumerate(report.suggestions, 1):
            lines.append(f"  {index}. {s.label}: would {s.would}")
            lines.append(f"     because {s.because}")
    if evidence:
        for run in report.runs:
            items = [(f.title, e) for f in run.findings for e in f.evidence]
            if items:
                lines += ["", f"-- evidence: {run.name}"]
                lines += [f"   {title}: {item}" for title, item in items]
    return redact_text("\n".join(lines)) + "\n"


def already_running(running: RunningDiagnosis) -> str:
    """The same run under way elsewhere (Slack, a replica, another terminal): who started it,
    when, where its result goes; nothing was run."""
    what = running.service + (f" ({', '.join(running.checks)})" if running.checks else "")
    if running.actor == SYSTEM.user_id:
        who = "the bot (for an incident)"
    elif running.on_terminal:
        who = f"{running.actor.removeprefix(CLI_ACTOR_PREFIX)} with chatops-bot diagnose"
    else:
        who = f"Slack user {running.actor}"
    if running.on_terminal:
        where = "its result is printed on that terminal"
    elif running.channel_id:
        where = f"its result will be posted in Slack, channel {running.channel_id}"
    else:
        where = "its result goes to the one who asked, in Slack"
    started = running.started_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return without_forbidden(
        f"A diagnosis of {what} is already running (started by {who}, at {started});"
        f" {where}. Nothing was run: wait for it, or name other checks."
    )
