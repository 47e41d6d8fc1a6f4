"""What a diagnosis produces: graded findings, the suggestions drawn from them, the report."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Any

from bot.redact import redact_text


class Grade(IntEnum):
    """Ordered: the worst grade of the findings is the report's."""

    OK = 0
    WARN = 1
    CRIT = 2


@dataclass(frozen=True, slots=True)
class Finding:
    """One graded fact: `summary` carries the numbers, `threshold` what they were held against.

    `evidence` is the detail for the thread (statements, pids, log lines, events); `facts`
    is what the advisor reads (pids, deployment names, counts).
    """

    check: str
    title: str
    grade: Grade
    summary: str
    threshold: str = ""
    evidence: tuple[str, ...] = ()
    facts: Mapping[str, Any] = field(default_factory=dict)


CheckFn = Callable[[], Awaitable[list[Finding]]]


@dataclass(frozen=True, slots=True)
class Check:
    """One unit of work run concurrently with the others, within its own `timeout`."""

    name: str  # "postgres", "kubernetes.pods", "http:https://..."
    system: str  # "http", "postgres", "redis", "kubernetes", "aws", "prometheus"
    title: str
    timeout: float
    run: CheckFn


@dataclass(frozen=True, slots=True)
class CheckRun:
    name: str
    system: str
    seconds: float
    findings: tuple[Finding, ...]


# A suggestion's parameters as JSON, at most: its button's value holds them beside the
# service (63 characters at most), the action and the incident's id, and Slack keeps 2,000
# characters of a value (bot.slack.diagnosis_blocks.suggestion_value).
PARAMS_MAX = 1750


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A remediation the runbook suggests: `action` and `params` say what exactly; `because`
    names the finding that led to it. `advice` suggestions are for a person to do by hand."""

    action: str
    label: str
    would: str
    because: str
    finding: str
    params: Mapping[str, Any] = field(default_factory=dict)
    advice: bool = False


@dataclass(frozen=True, slots=True)
class Report:
    service: str
    started_at: datetime
    seconds: float
    runs: tuple[CheckRun, ...]
    suggestions: tuple[Suggestion, ...] = ()

    @property
    def findings(self) -> list[Finding]:
        return [finding for run in self.runs for finding in run.findings]

    @property
    def grade(self) -> Grade:
        return max((f.grade for f in self.findings), default=Grade.OK)

    def count(self, grade: Grade) -> int:
        return sum(1 for f in self.findings if f.grade is grade)

    def grades(self) -> dict[str, str]:
        """check -> worst grade, for the audit log."""
        worst: dict[str, Grade] = {}
        for finding in self.findings:
            worst[finding.check] = max(worst.get(finding.check, Grade.OK), finding.grade)
        return {check: grade.name for check, grade in worst.items()}

    def by_check(self, check: str) -> Sequence[Finding]:
        return [f for f in self.findings if f.check == check]


def _plain(data: Mapping[str, Any]) -> dict[str, Any]:
    """JSON values only (a time or a decimal a probe kept becomes its text)."""
    return dict(json.loads(json.dumps(dict(data), default=str)))


def report_to_json(report: Report) -> dict[str, Any]:
    """The report as JSON (the outbox carries it to Slack after the run is recorded), what
    the systems returned redacted: the outbox keeps it in the database for days."""
    return {
        "service": report.service,
        "started_at": report.started_at.isoformat(),
        "seconds": report.seconds,
        "runs": [
            {
                "name": run.name,
                "system": run.system,
                "seconds": run.seconds,
                "findings": [
                    {
                        "check": f.check,
                        "title": f.title,
                        "grade": f.grade.name,
                        "summary": redact_text(f.summary),
                        "threshold": f.threshold,
                        "evidence": [redact_text(line) for line in f.evidence],
                        "facts": _plain(f.facts),
                    }
                    for f in run.findings
                ],
            }
            for run in report.runs
        ],
        "suggestions": [
            {
                "action": s.action,
                "label": s.label,
                "would": s.would,
                "because": s.because,
                "finding": s.finding,
                "params": _plain(s.params),
                "advice": s.advice,
            }
            for s in report.suggestions
        ],
    }


def report_from_json(data: Mapping[str, Any]) -> Report:
    runs = tuple(
        CheckRun(
            run["name"],
            run["system"],
            float(run["seconds"]),
            tuple(
                Finding(
                    f["check"],
                    f["title"],
                    Grade[f["grade"]],
                    f["summary"],
                    f.get("threshold", ""),
                    tuple(f.get("evidence") or ()),
                    dict(f.get("facts") or {}),
                )
                for f in run["findings"]
            ),
        )
        for run in data["runs"]
    )
    suggestions = tuple(Suggestion(**s) for s in data.get("suggestions") or ())
    return Report(
        data["service"],
        datetime.fromisoformat(data["started_at"]),
        float(data["seconds"]),
        runs,
        suggestions,
    )
