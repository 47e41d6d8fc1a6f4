"""Remediation's reminder kinds and when they are due: pure, about a request (its `subject`,
"remediation:<id>"), not an incident. Fired through the reminder engine (bot.reminders) by
bot.remediation.expiry.

Rules:
- A request waiting for approval is reminded at its `expires_at` (`expiry`): still waiting
  then, it expires.
- A request that starts running is watched once its execution timeout has surely passed
  (`watch`: the timeout plus a grace, policy `remediation.watch_grace`): still running then,
  the process that ran it died.
- Deciding, approving or finishing the request withdraws its live reminders (the engine's
  `cancel_subject`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from bot.remediation.storage import Request
from bot.reminders.model import PlannedReminder

WATCH_GRACE = 10.0  # seconds past the execution timeout before a run counts as abandoned
PLAN = 0  # a request's reminders belong to no escalation plan


class RemediationKind(StrEnum):
    EXPIRY = "remediation_expiry"
    WATCH = "remediation_watch"


def expiry(request: Request) -> PlannedReminder:
    """The reminder that expires the request if nobody decides it in time."""
    return PlannedReminder(RemediationKind.EXPIRY, request.expires_at, subject=request.subject)


def watch(
    request: Request, started_at: datetime, timeout: float, grace: float = WATCH_GRACE
) -> PlannedReminder:
    """The reminder that closes a run its process abandoned as "outcome unknown"."""
    due = started_at + timedelta(seconds=timeout + grace)
    return PlannedReminder(RemediationKind.WATCH, due, subject=request.subject)
