"""The catch-up: where an incident stands, for someone who joins late. Pure and deterministic:
the same record always gives the same catch-up (no language model, no clock but `now`).

`build_catchup` takes the facts (the incident with its roles and ETA, its status updates,
remediations, diagnoses, open action items, the tail of its timeline and the alerts firing
for it) and keeps what fits a dozen lines:

- how long it has been open: from the declaration to `now`, or to its resolution;
- the last update: the newest status update (updated, resolved, reopened), if any;
- what was tried: remediation requests newest first, TRIED_SHOWN of them, with how many more;
- the latest diagnosis: the newest `diagnosed` timeline entry (its service and grade);
- open action items: the soonest due first, ITEMS_SHOWN of them, with how many in all;
- firing alerts: ALERTS_SHOWN of them, with how many in all;
- recent: the RECENT_SHOWN newest timeline entries, oldest of them first.

Rendering (the wording, the markup) is bot.slack.catchup_text's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.models import Incident, TimelineEvent

TRIED_SHOWN = 3
ITEMS_SHOWN = 2
ALERTS_SHOWN = 3
RECENT_SHOWN = 3
# The timeline kinds that are status updates in the communication template.
UPDATE_KINDS = ("updated", "resolved", "reopened")


@dataclass(frozen=True, slots=True)
class FiringAlert:
    """An alert firing now for the incident (bot.alerts records them)."""

    name: str
    since: datetime | None = None
    source: str = ""  # alertmanager, grafana, a webhook's name


@dataclass(frozen=True, slots=True)
class RemediationTried:
    """One remediation request on the incident and where it got to."""

    id: int
    action: str
    service: str
    status: str  # requested, approved, running, succeeded, failed, denied, expired, unknown
    outcome: str
    at: datetime


@dataclass(frozen=True, slots=True)
class DiagnosisGrade:
    service: str
    grade: str  # OK, WARN, CRIT
    at: datetime
    problems: tuple[str, ...] = ()  # the checks that were not OK


@dataclass(frozen=True, slots=True)
class OpenItem:
    text: str
    owner: str
    due_at: datetime


@dataclass(frozen=True, slots=True)
class Catchup:
    """What the catch-up shows; counts say how much was left out."""

    incident: Incident
    open_seconds: float
    last_update: TimelineEvent | None
    tried: tuple[RemediationTried, ...]
    tried_total: int
    diagnosis: DiagnosisGrade | None
    alerts: tuple[FiringAlert, ...]
    alerts_total: int
    items: tuple[OpenItem, ...]
    items_total: int
    recent: tuple[TimelineEvent, ...]


def _newest(events: Sequence[TimelineEvent]) -> TimelineEvent | None:
    return max(events, key=lambda e: (e.at, e.id or 0), default=None)


def diagnosis_of(event: TimelineEvent) -> DiagnosisGrade:
    """A `diagnosed` timeline entry's grade (its data is the diagnosis's audit args)."""
    grades = event.data.get("grades")
    problems = (
        tuple(name for name, grade in grades.items() if grade != "OK")
        if isinstance(grades, dict)
        else ()
    )
    return DiagnosisGrade(
        service=str(event.data.get("service", "?")),
        grade=str(event.data.get("grade", "?")),
        at=event.at,
        problems=problems,
    )


def build_catchup(
    incident: Incident,
    *,
    now: datetime,
    updates: Sequence[TimelineEvent] = (),
    remediations: Sequence[RemediationTried] = (),
    diagnoses: Sequence[TimelineEvent] = (),
    items: Sequence[OpenItem] = (),
    alerts: Sequence[FiringAlert] = (),
    tail: Sequence[TimelineEvent] = (),
) -> Catchup:
    """The catch-up of `incident` from its facts, as of `now` (the module's rules)."""
    end = incident.resolved_at or now
    update = _newest([e for e in updates if e.kind in UPDATE_KINDS])
    diagnosed = _newest([e for e in diagnoses if e.kind == "diagnosed"])
    tried = sorted(remediations, key=lambda r: (r.at, r.id), reverse=True)
    due = sorted(items, key=lambda item: (item.due_at, item.text))
    recent = sorted(tail, key=lambda e: (e.at, e.id or 0))[-RECENT_SHOWN:]
    return Catchup(
        incident=incident,
        open_seconds=max(0.0, (end - incident.declared_at).total_seconds()),
        last_update=update,
        tried=tuple(tried[:TRIED_SHOWN]),
        tried_total=len(tried),
        diagnosis=diagnosis_of(diagnosed) if diagnosed is not None else None,
        alerts=tuple(alerts[:ALERTS_SHOWN]),
        alerts_total=len(alerts),
        items=tuple(due[:ITEMS_SHOWN]),
        items_total=len(due),
        recent=tuple(recent),
    )
