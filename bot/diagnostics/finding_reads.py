"""What the advisor (bot.diagnostics.advisor) reads off graded findings: the bad ones of a
check, why one was flagged, the pids it named that remediation may end, its threshold."""

from __future__ import annotations

import math
from collections.abc import Sequence

from bot.diagnostics.findings import Finding, Grade


def bad(findings: Sequence[Finding], check: str) -> list[Finding]:
    return [f for f in findings if f.check == check and f.grade > Grade.OK]


def because(finding: Finding) -> str:
    return f"{finding.check} {finding.grade.name}: {finding.summary}"[:300]


def endable(finding: Finding, key: str = "pids") -> list[int]:
    """The pids a finding named that remediation may end (its `left_alone` excepted)."""
    spared = {int(pid) for pid, _ in finding.facts.get("left_alone", [])}
    return [int(pid) for pid in finding.facts.get(key, []) if int(pid) not in spared]


def over_s(finding: Finding) -> int:
    """The threshold that flagged the finding, in whole seconds (at least one): a session
    older than the finding's threshold is older than this too."""
    return max(1, math.floor(float(finding.facts.get("over_s", 300))))


def count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"
