"""Reminder kinds owned by other services, fired by the escalation engine.

The engine claims, locks and closes every reminder the same way (exactly once, restart-safe);
for a kind registered here it asks the owner's handler what firing means. The handler runs
inside the firing transaction with the incident row locked: it re-checks its own state,
queues its notifications in the outbox and says whether it fired, and what comes next.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.escalation.planner import PlannedReminder, Reminder, ReminderStatus
from bot.incidents.changes import Change
from bot.models import Incident
from bot.store import Tx


@dataclass(frozen=True, slots=True)
class Firing:
    """What a handler did: FIRED or SKIPPED, why, and the reminder to plan next (if any)."""

    status: ReminderStatus
    outcome: str
    follow_up: PlannedReminder | None = None


class ReminderHandler(Protocol):
    async def fire(self, tx: Tx, reminder: Reminder, incident: Incident, now: datetime) -> Firing:
        """Fire (or skip) `reminder`; called once per claim, inside its transaction."""
        ...


class ProviderPages(Protocol):
    """Pages the paging services (PagerDuty, Opsgenie) a level names (bot.paging)."""

    async def page(
        self,
        change: Change,
        incident: Incident,
        providers: Sequence[str],
        level: int,
        *,
        acknowledged: bool = False,
    ) -> None:
        """Queue the providers' pages inside the firing transaction `change`."""
        ...


class OnCallSource(Protocol):
    """Who is on call now at the paging services, as Slack users (bot.paging.oncall)."""

    async def slack_users(self, providers: Sequence[str]) -> list[str]:
        """Slack user IDs on call now at `providers`; [] when none can be found. Never raises."""
        ...
