"""The drill report's checks line says why no checks show, as it is."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.incidents.drill_report import DrillReport
from bot.models import Incident, Severity, Status
from bot.slack.drill_text import report_blocks

T0 = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)


def _drill(services: tuple[str, ...]) -> Incident:
    return Incident(
        id="INC-20261205-001",
        title="database failover",
        severity=Severity.P2,
        status=Status.RESOLVED,
        declared_by="U0ALICE",
        declared_at=T0,
        updated_at=T0,
        services=services,
        drill=True,
    )


def _checks_line(incident: Incident) -> str:
    report = DrillReport(
        incident_id=incident.id,
        title=incident.title,
        severity="P2",
        declared_at=T0.timestamp(),
        ended_at=T0.timestamp() + 60,
    )
    text = str(report_blocks(incident, report)[1]["text"]["text"])
    return next(line for line in text.splitlines() if line.startswith("*Checks*"))


def test_a_drill_whose_service_had_not_reported_is_not_told_to_name_one() -> None:
    # It read "none ran (name a catalogued service: `/incident drill P1 checkout: …`)" to a
    # drill that had named `orders`, whose checks were still running when it was resolved.
    line = _checks_line(_drill(("orders",)))
    assert line == "*Checks*: none reported: those of `orders` had not finished when it ended"


def test_a_drill_naming_no_service_is_shown_how_with_its_own_severity() -> None:
    line = _checks_line(_drill(()))
    assert "`/incident drill P2 &lt;service&gt;: …`" in line and "checkout" not in line
