"""What the public status page shows, and nothing else: the document the HTML, the JSON and
the Atom feed are rendered from. No roles, people, notes, diagnoses or remediations have a
field here, so no template can show them.

A component's state comes from the open public incidents that affect it (their `services`
meet the component's): the worst of them by severity, P0 a major outage, P1 a partial
outage, P2 and P3 degraded performance; with none open, operational. A resolved incident
changes no state.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from bot.models import Severity, Status


class ComponentState(StrEnum):
    OPERATIONAL = "operational"
    DEGRADED = "degraded_performance"
    PARTIAL = "partial_outage"
    MAJOR = "major_outage"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def rank(self) -> int:
        return list(ComponentState).index(self)


_LABELS = {
    ComponentState.OPERATIONAL: "Operational",
    ComponentState.DEGRADED: "Degraded performance",
    ComponentState.PARTIAL: "Partial outage",
    ComponentState.MAJOR: "Major outage",
}

STATE_OF_SEVERITY: dict[Severity, ComponentState] = {
    Severity.P0: ComponentState.MAJOR,
    Severity.P1: ComponentState.PARTIAL,
    Severity.P2: ComponentState.DEGRADED,
    Severity.P3: ComponentState.DEGRADED,
}


def worst(states: list[ComponentState]) -> ComponentState:
    """The most severe of `states`; operational when there are none."""
    return max(states, key=lambda state: state.rank, default=ComponentState.OPERATIONAL)


class _Public(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PublicUpdate(_Public):
    """A status update a person published: when, the status it set, its words as typed."""

    at: datetime
    status: Status
    text: str


class PublicIncident(_Public):
    """A published incident. `state` is what it does to its components while open."""

    id: str
    title: str
    impact: str
    status: Status
    state: ComponentState
    components: list[str]
    started_at: datetime
    resolved_at: datetime | None
    updated_at: datetime
    updates: list[PublicUpdate]  # newest first


class PublicComponent(_Public):
    name: str
    state: ComponentState


class StatusDocument(_Public):
    """The whole page: the overall state, the components, open and recently resolved
    incidents (newest first), and when its newest public fact changed."""

    title: str
    state: ComponentState
    components: list[PublicComponent]
    open_incidents: list[PublicIncident]
    resolved_incidents: list[PublicIncident]
    resolved_window_days: int
    updated_at: datetime | None
