"""The advisor acts on exactly what a finding flagged (issue 15): thresholds in seconds, the
named pids less those remediation would refuse, nothing offered that would change nothing."""

from __future__ import annotations

import pytest

from bot.catalog import Service
from bot.diagnostics.advisor import advise, describe
from bot.diagnostics.findings import Finding, Grade
from bot.errors import UsageError
from bot.remediation import actions

PG = Service.model_validate({"postgres": {"dsn_env": "X"}})


def _finding(check: str, grade: Grade, **facts: object) -> Finding:
    return Finding(check, check, grade, "summary", facts=facts)


def test_seconds_thresholds_are_kept_and_the_named_pids_carried() -> None:
    findings = [
        _finding("postgres.idle_in_transaction", Grade.WARN, pids=[11, 12, 13], over_s=2.0),
        _finding("postgres.long_queries", Grade.WARN, pids=[21], over_s=2.0),
    ]
    fixes = {s.action: s for s in advise("shop", PG, findings)}
    idle = fixes["postgres.terminate_idle_in_transaction"]
    assert idle.params == {"older_than_s": 2, "pids": [11, 12, 13]}
    assert idle.label == "End 3 sessions idle in transaction > 2 s"
    assert fixes["postgres.terminate_long_queries"].params == {"older_than_s": 2, "pids": [21]}
    assert describe("shop", PG, idle.action, dict(idle.params)) == (
        "terminate sessions idle in transaction over 2 s on shop's database (pids 11, 12, 13)"
    )


def test_backends_remediation_would_refuse_get_no_button() -> None:
    findings = [
        _finding(
            "postgres.idle_in_transaction",
            Grade.WARN,
            pids=[11, 12],
            over_s=300,
            left_alone=[[11, "superuser"], [12, "superuser"]],
        ),
        _finding(
            "postgres.blocking", Grade.CRIT, blocking_pids=[31], left_alone=[[31, "superuser"]]
        ),
        _finding("postgres.long_queries", Grade.WARN, pids=[21, 22], left_alone=[[22, "database"]]),
    ]
    fixes = advise("shop", PG, findings)
    assert [(s.action, s.params) for s in fixes] == [
        ("postgres.terminate_long_queries", {"older_than_s": 300, "pids": [21]})
    ]


def test_connections_near_the_limit_without_idle_sessions_offer_nothing_to_end() -> None:
    crowded = _finding("postgres.connections", Grade.CRIT, pct=99.0)
    quiet = _finding("postgres.idle", Grade.OK)
    assert advise("shop", PG, [crowded, quiet]) == []
    idle = _finding("postgres.idle", Grade.WARN, pids=[41, 42], over_s=90.5)
    [fix] = advise("shop", PG, [crowded, idle])
    assert fix.params == {"older_than_s": 90, "pids": [41, 42]}


def test_pids_can_be_typed_and_are_checked() -> None:
    spec = actions.spec_for("postgres.terminate_idle_in_transaction")
    typed = actions.parse_words(spec, ["older_than=2", "pids=11,12"])
    assert typed.model_dump() == {"older_than_s": 2, "pids": (11, 12)}
    with pytest.raises(UsageError, match="pids"):
        actions.parse_words(spec, ["older_than=2", "pids=11;DROP"])
    with pytest.raises(UsageError, match="pid"):
        actions.from_button(spec, {"older_than_s": 2, "pids": [0]})
