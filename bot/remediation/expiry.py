"""Firing remediation's reminders (bot.remediation.timers), through the reminder engine's
store (restart-safe):

- remediation_expiry, due at the request's expiry: a request still waiting is expired.
- remediation_watch, due once the execution timeout has surely passed: a request still
  running was left by a process that died mid-run; it is closed as "outcome unknown" and its
  requester and approvers are told. It is never run again.
"""

from __future__ import annotations

from bot.incidents.changes import Change
from bot.models import Incident
from bot.remediation import storage as requests
from bot.remediation.service import RemediationService
from bot.remediation.storage import Status
from bot.remediation.timers import RemediationKind
from bot.reminders.engine import ReminderEngine
from bot.reminders.kinds import Firing
from bot.reminders.model import Reminder, ReminderStatus


class RemediationReminders:
    """The engine's handler for remediation's kinds."""

    def __init__(self, *, service: RemediationService) -> None:
        self.service = service

    def register(self, engine: ReminderEngine) -> None:
        engine.register(RemediationKind, self)

    async def fire(self, change: Change, reminder: Reminder, incident: Incident | None) -> Firing:
        """Expire a request still waiting, or close a run still open as "outcome unknown"."""
        tx, now = change.tx, change.now
        request_id = int(str(reminder.subject).rpartition(":")[2] or 0)
        request = await requests.get(tx, request_id, lock=True)
        if request is not None:
            if reminder.kind == RemediationKind.EXPIRY and request.status is Status.REQUESTED:
                await self.service.expire(tx, request, now, reminder=reminder.id)
                return Firing(ReminderStatus.FIRED, "expired")
            if reminder.kind == RemediationKind.WATCH and request.status is Status.RUNNING:
                await self.service.runner.close_unknown(tx, request, now)
                return Firing(ReminderStatus.FIRED, "outcome unknown")
        return Firing(ReminderStatus.SKIPPED, "nothing to do")
