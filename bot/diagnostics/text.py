"""A diagnosis as plain text, for `chatops-bot diagnose` in a terminal."""

from __future__ import annotations

from bot.diagnostics.findings import Report
from bot.redact import redact_text


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
