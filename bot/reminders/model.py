"""A durable timer as planned and as stored: the engine's data, the same for every kind.

A reminder is about an incident (`incident_id`), a `subject` ("remediation:42",
"action_item:7": the kind's own reference), or both. `kind` names the client that owns it
(bot.reminders.kinds); `plan` and `level` mean what that client says (escalation: the plan
and the 1-based level of a page; 0 for kinds that have none).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class ReminderStatus(StrEnum):
    PENDING = "pending"  # planned; fires at due_at
    FIRING = "firing"  # claimed by one process, which is firing it now
    FIRED = "fired"  # sent (its notifications are in the outbox)
    SKIPPED = "skipped"  # came due but was no longer needed
    CANCELLED = "cancelled"  # withdrawn by a change before it came due


@dataclass(frozen=True, slots=True)
class PlannedReminder:
    """A reminder to write. `kind` is a registered kind's name (a str or a StrEnum member)."""

    kind: str
    due_at: datetime
    level: int = 0
    notify: tuple[str, ...] = ()
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class Reminder:
    """A reminder as stored (`incident_id` is "" for one about a `subject` alone)."""

    id: int
    incident_id: str
    plan: int
    kind: str
    level: int
    due_at: datetime
    status: ReminderStatus
    notify: tuple[str, ...] = ()
    reason: str = ""
    actor: str | None = None
    created_at: datetime | None = None
    claimed_by: str | None = None
    fired_at: datetime | None = None
    outcome: str = ""
    subject: str | None = None

    @property
    def manual(self) -> bool:
        """Planned and fired by a person (a page by `/incident escalate`), not by the clock."""
        return self.actor is not None
