"""The drill report: who was paged, who acknowledged and how fast, which escalation level
answered, and what the read-only checks found. Built from the record when a drill ends.

`build_drill_report` is pure (its rules below); `gather` reads the facts it takes inside the
caller's transaction: the fired page reminders, the paging services' alerts, the timeline's
diagnoses. The report travels as JSON (an outbox payload, a timeline entry's data).

Which level answered:
- nobody acknowledged: none;
- the acknowledger is named by a level paged before the acknowledgement: the first such level;
- otherwise (a member of a paged user group, or someone else): the highest level paged by
  then, since that page is what the answer came after.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from bot.clock import utc_from_timestamp
from bot.incidents import storage
from bot.models import Incident
from bot.store import Tx


@dataclass(frozen=True, slots=True)
class PageSent:
    """One escalation page: its level, whom it named, when; `by` for a page made by hand."""

    level: int
    recipients: tuple[str, ...]
    at: float
    by: str | None = None


@dataclass(frozen=True, slots=True)
class CheckFound:
    """One run of a service's read-only checks: its worst grade and the checks not OK."""

    service: str
    grade: str
    problems: tuple[str, ...]
    at: float


@dataclass(frozen=True, slots=True)
class DrillReport:
    incident_id: str
    title: str
    severity: str
    declared_at: float
    ended_at: float | None
    pages: tuple[PageSent, ...] = ()
    acknowledged_by: str | None = None
    ack_seconds: float | None = None  # from the declaration to the acknowledgement
    answered_level: int | None = None
    providers: dict[str, str] = field(default_factory=dict)  # provider -> its alert's state
    providers_skipped: tuple[str, ...] = ()  # named by a level, left alone (a drill)
    checks: tuple[CheckFound, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DrillReport:
        return cls(
            incident_id=data["incident_id"],
            title=data["title"],
            severity=data["severity"],
            declared_at=float(data["declared_at"]),
            ended_at=data.get("ended_at"),
            pages=tuple(
                # "targets": the key of reports stored before it was called "recipients"
                PageSent(
                    p["level"],
                    tuple(p.get("recipients", p.get("targets", ()))),
                    p["at"],
                    p.get("by"),
                )
                for p in data.get("pages", ())
            ),
            acknowledged_by=data.get("acknowledged_by"),
            ack_seconds=data.get("ack_seconds"),
            answered_level=data.get("answered_level"),
            providers=dict(data.get("providers", {})),
            providers_skipped=tuple(data.get("providers_skipped", ())),
            checks=tuple(
                CheckFound(c["service"], c["grade"], tuple(c["problems"]), c["at"])
                for c in data.get("checks", ())
            ),
        )

    @property
    def declared(self) -> datetime:
        return utc_from_timestamp(self.declared_at)


def answered_level(
    pages: Sequence[PageSent], acker: str | None, acked_at: float | None
) -> int | None:
    """The level whose page the acknowledgement answered (the module's rules)."""
    if acker is None or acked_at is None:
        return None
    before = [page for page in pages if page.at <= acked_at]
    if not before:
        return None
    named = [page.level for page in before if acker in page.recipients]
    return min(named) if named else max(page.level for page in before)


def build_drill_report(
    incident: Incident,
    pages: Sequence[PageSent],
    checks: Sequence[CheckFound],
    providers: dict[str, str],
    providers_skipped: Sequence[str] = (),
) -> DrillReport:
    """The report of a drill from its facts; pages and checks in the order they happened."""
    acked_at = incident.acknowledged_at.timestamp() if incident.acknowledged_at else None
    ordered = tuple(sorted(pages, key=lambda page: (page.at, page.level)))
    return DrillReport(
        incident_id=incident.id,
        title=incident.title,
        severity=incident.severity.value,
        declared_at=incident.declared_at.timestamp(),
        ended_at=incident.resolved_at.timestamp() if incident.resolved_at else None,
        pages=ordered,
        acknowledged_by=incident.acknowledged_by if acked_at is not None else None,
        ack_seconds=acked_at - incident.declared_at.timestamp() if acked_at is not None else None,
        answered_level=answered_level(ordered, incident.acknowledged_by, acked_at),
        providers=dict(providers),
        providers_skipped=tuple(providers_skipped),
        checks=tuple(sorted(checks, key=lambda check: check.at)),
    )


async def gather(
    tx: Tx, incident: Incident, *, provider_names: Sequence[str], page_providers: bool
) -> DrillReport:
    """The drill's report from the store, inside the caller's transaction."""
    rows = await tx.fetchall(
        "SELECT level, notify, fired_at, actor FROM reminders"
        " WHERE incident_id = ? AND kind = 'page' AND status = 'fired' ORDER BY fired_at, id",
        (incident.id,),
    )
    pages = [
        PageSent(
            int(row["level"]),
            tuple(json.loads(row["notify"])),
            float(row["fired_at"]),
            row["actor"],
        )
        for row in rows
        if row["fired_at"] is not None
    ]
    alerts = await tx.fetchall(
        "SELECT provider, state FROM paging_alerts WHERE incident_id = ? ORDER BY provider",
        (incident.id,),
    )
    providers = {row["provider"]: row["state"] for row in alerts}
    named = {target for page in pages for target in page.recipients if target in provider_names}
    skipped = sorted(named - providers.keys()) if not page_providers else []
    diagnosed = await storage.timeline_tail(tx, incident.id, limit=20, kinds=("diagnosed",))
    checks = [
        CheckFound(
            service=str(event.data.get("service", "?")),
            grade=str(event.data.get("grade", "?")),
            problems=tuple(
                name for name, grade in dict(event.data.get("grades", {})).items() if grade != "OK"
            ),
            at=event.at.timestamp(),
        )
        for event in diagnosed
    ]
    return build_drill_report(incident, pages, checks, providers, skipped)
