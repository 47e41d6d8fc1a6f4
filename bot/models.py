"""Domain objects shared by the services. Plain data: no storage, no Slack."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.refs import Rich

__all__ = [
    "Actor",
    "Incident",
    "IncidentPage",
    "IncidentRole",
    "Severity",
    "Status",
    "TimelineEvent",
]


class Severity(StrEnum):
    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"


class Status(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"

    @property
    def label(self) -> str:
        return self.value.upper()

    @property
    def is_open(self) -> bool:
        return self is not Status.RESOLVED


class IncidentRole(StrEnum):
    COMMANDER = "commander"
    TECH_LEAD = "tech-lead"
    COMMS_LEAD = "comms-lead"
    SME = "sme"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asked: a Slack user, or the bot itself for scheduled work. `external`: a user of
    another organisation (in a Slack Connect channel), who holds a role only where the
    policy names them."""

    user_id: str
    user_name: str = ""
    external: bool = False

    @property
    def is_system(self) -> bool:
        return self.user_id == SYSTEM.user_id


SYSTEM = Actor(user_id="chatops-bot", user_name="chatops-bot")


@dataclass(frozen=True, slots=True)
class Incident:
    """An incident as stored. `version` increases with every change (optimistic checks)."""

    id: str
    title: str
    severity: Severity
    status: Status
    declared_by: str
    declared_at: datetime
    updated_at: datetime
    impact: str = ""
    services: tuple[str, ...] = ()
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution: str = ""
    eta: str = ""
    eta_at: datetime | None = None  # when the latest update expects a fix
    current_status: str = ""
    roles: dict[str, str] = field(default_factory=dict)
    channel_id: str | None = None
    summary_ts: str | None = None
    announce_ts: str | None = None
    next_update_due: datetime | None = None
    version: int = 1
    drill: bool = False  # a practice incident (`/incident drill`): marked DRILL everywhere
    # Whom the first level paged at declaration, in the announcement itself (no war room):
    # the card shows the page until someone acknowledges (Policy.announced_page).
    announced_page: tuple[str, ...] = ()

    @property
    def is_open(self) -> bool:
        return self.status.is_open

    @property
    def commander(self) -> str | None:
        return self.roles.get(IncidentRole.COMMANDER.value)

    @property
    def declarer(self) -> str | None:
        """The person who declared it; None when the bot did (automatic recovery), since
        Slack has no user by the bot's actor ID to invite or message."""
        return None if self.declared_by == SYSTEM.user_id else self.declared_by

    @property
    def lead(self) -> str | None:
        """The person who answers for it: the commander, else the declarer; None when
        neither is a person (a bot-declared incident nobody has taken command of)."""
        return self.commander or self.declarer

    def evolve(self, **changes: Any) -> Incident:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class IncidentPage:
    """One page of a list of incidents, newest first, and where it sits in the whole."""

    incidents: tuple[Incident, ...]
    total: int  # incidents in the whole list
    page: int  # from 1
    page_size: int
    open_only: bool
    drills: bool = False  # a list of drills (`/incident list drills`), kept apart

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))

    @property
    def after(self) -> int:
        """How many incidents come after this page."""
        return max(0, self.total - self.page * self.page_size)


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One line of an incident's timeline."""

    incident_id: str
    at: datetime
    actor: str
    kind: str
    text: str
    data: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    source: str | None = None  # what it copies (`slack:<channel>:<ts>`), at most once
    # The end of `text` that a person wrote (a title, a note, a copied message): shown as
    # text, never read as markup. What comes before it is the bot's own words.
    said: str = ""
    # The line as data (bot.refs): people, channels and groups as references, rendered by
    # each surface; `text` is its plain form, for search and older readers.
    parts: Rich = ()

    def __post_init__(self) -> None:
        if not self.text.endswith(self.said):
            raise ValueError("a timeline event's `said` must be the end of its text")
