"""The incident state machine: which status may follow which, and why not; when the next
status update is due."""

from __future__ import annotations

from datetime import datetime

from bot.errors import Conflict
from bot.models import Incident, Status
from bot.policy import Policy

ORDER = [Status.INVESTIGATING, Status.IDENTIFIED, Status.MONITORING, Status.RESOLVED]


def check_transition(current: Status, target: Status) -> None:
    """Raise Conflict with the reason when `current -> target` is not a legal step.

    Status moves forward (skipping a step is fine: a quick fix may go straight to
    monitoring); staying put is a plain update; a resolved incident changes only by reopen.
    """
    if current is Status.RESOLVED:
        raise Conflict("This incident is resolved. Use `/incident reopen` to work on it again.")
    if ORDER.index(target) < ORDER.index(current):
        raise Conflict(
            f"An incident moves forward only (investigating → identified → monitoring → "
            f"resolved); it is {current.value}, so it cannot go back to {target.value}. "
            "If it got worse, post an update that says so, or resolve and reopen it."
        )


def next_update_due(policy: Policy, incident: Incident, now: datetime) -> datetime | None:
    """When the next status update is due for `incident` as it is now: None once resolved or
    when its severity sets no update cadence."""
    cadence = policy.response_times(incident.severity).update_every
    if not incident.is_open or cadence is None or cadence.is_zero:
        return None
    return now + cadence.as_timedelta()
