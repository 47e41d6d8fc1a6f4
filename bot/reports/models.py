"""Plain data for reports, follow-ups and statistics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Protocol

from bot.models import Incident, Severity, TimelineEvent
from bot.remediation.read_models import RemediationRun


@dataclass(frozen=True, slots=True)
class Postmortem:
    """What the postmortem form recorded for one incident (all optional)."""

    incident_id: str
    root_cause: str = ""
    resolution: str = ""
    prevention: str = ""
    lessons: str = ""
    affected_users: str = ""
    data_impact: str = ""
    started_at: datetime | None = None  # when the impact began
    detected_at: datetime | None = None  # when it was first detected
    updated_by: str = ""
    updated_at: datetime | None = None


def latest_resolution(
    incident: Incident, postmortem: Postmortem, reopened_at: datetime | None
) -> str:
    """The resolution a report and the postmortem form show: the postmortem's, unless the
    incident was reopened after it was recorded (that fix did not hold): then the incident's,
    which its last resolve wrote."""
    if postmortem.resolution and not stale_resolution(postmortem, reopened_at):
        return postmortem.resolution
    return incident.resolution


def stale_resolution(postmortem: Postmortem, reopened_at: datetime | None) -> bool:
    """Whether the postmortem's resolution was recorded before the incident's last reopening."""
    recorded = postmortem.updated_at
    return reopened_at is not None and (recorded is None or recorded < reopened_at)


@dataclass(frozen=True, slots=True)
class NewActionItem:
    text: str
    owner: str
    due_at: datetime


@dataclass(frozen=True, slots=True)
class ActionItem:
    """A follow-up: open until closed (with the button or by its owner)."""

    id: int
    incident_id: str
    text: str
    owner: str
    due_at: datetime
    created_by: str
    created_at: datetime
    closed_at: datetime | None = None
    closed_by: str | None = None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class RemediationHistory(Protocol):
    """The seam for the remediation work: the runs of an incident, oldest first. Until it is
    wired, reports have no remediation section (nothing is invented)."""

    async def runs(self, incident_id: str) -> Sequence[RemediationRun]: ...


@dataclass(frozen=True, slots=True)
class SimilarIncident:
    incident: Incident
    root_cause: str
    resolution: str
    score: float


@dataclass(frozen=True, slots=True)
class ReportFacts:
    """Everything the post-incident report shows; times to ack and resolve from the timeline."""

    incident: Incident
    timeline: tuple[TimelineEvent, ...]
    postmortem: Postmortem
    action_items: tuple[ActionItem, ...]
    first_acknowledged_at: datetime | None
    resolved_at: datetime | None  # the last resolution, when the incident is resolved
    ack_due_at: datetime | None
    resolve_due_at: datetime | None
    working_seconds: float | None  # start to end (or now) on the policy's calendar
    generated_at: datetime
    remediations: tuple[RemediationRun, ...] | None = None  # None: no remediation work wired
    first_resolved_at: datetime | None = None
    # The team's time zone (the policy's calendar): an action item is due at the end of a
    # working day there, so its due date is that day there, not in UTC.
    zone: tzinfo = UTC

    @property
    def acknowledgement_wait_ended_at(self) -> datetime | None:
        """When the wait for an acknowledgement ended: the first acknowledgement, or the
        first resolution if that came earlier (resolving stops the escalation too)."""
        ends = [t for t in (self.first_acknowledged_at, self.first_resolved_at) if t]
        return min(ends) if ends else None

    @property
    def started_at(self) -> datetime:
        return self.postmortem.started_at or self.incident.declared_at

    @property
    def ended_at(self) -> datetime | None:
        return self.resolved_at


@dataclass(frozen=True, slots=True)
class Figure:
    """Median and 90th percentile of a duration, in seconds, over `count` incidents."""

    count: int = 0
    median: float | None = None
    p90: float | None = None


@dataclass(frozen=True, slots=True)
class SeverityStats:
    severity: Severity
    incidents: int = 0
    mtta: Figure = Figure()
    mttr: Figure = Figure()
    mttd: Figure = Figure()
    ack_breaches: int = 0
    resolve_breaches: int = 0


@dataclass(frozen=True, slots=True)
class WeekStats:
    """One week (Monday 00:00 UTC) of incidents: how many per severity, and MTTR."""

    start: datetime
    counts: dict[Severity, int] = field(default_factory=dict)
    mttr_median: float | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class Stats:
    since: datetime
    until: datetime
    days: int
    by_severity: tuple[SeverityStats, ...]
    weeks: tuple[WeekStats, ...]

    @property
    def total(self) -> int:
        return sum(s.incidents for s in self.by_severity)
