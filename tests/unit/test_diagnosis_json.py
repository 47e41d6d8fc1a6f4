"""A diagnosis travels through the outbox as JSON: it must come back as the same report."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.diagnostics.findings import (
    CheckRun,
    Finding,
    Grade,
    Report,
    Suggestion,
    report_from_json,
    report_to_json,
)


def test_a_report_survives_the_round_trip_and_times_become_text() -> None:
    at = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
    finding = Finding(
        "postgres.blocking",
        "Blocking",
        Grade.CRIT,
        "1 blocked",
        threshold="none",
        evidence=("pid 4121 blocks 4188",),
        facts={"pids": [4121], "since": at},
    )
    suggestion = Suggestion(
        "postgres.terminate_backend",
        "Cancel 4121",
        "cancel",
        "blocking",
        "postgres.blocking",
        params={"pid": 4121},
    )
    report = Report(
        "orders", at, 1.5, (CheckRun("postgres", "postgres", 0.2, (finding,)),), (suggestion,)
    )
    back = report_from_json(report_to_json(report))
    assert back.grade is Grade.CRIT and back.suggestions == (suggestion,)
    [found] = back.findings
    assert found.evidence == finding.evidence and found.facts["pids"] == [4121]
    assert found.facts["since"] == str(at)
    assert back.started_at == at and back.runs[0].seconds == 0.2
