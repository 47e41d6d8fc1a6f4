"""The remediation reminders, fired by the escalation engine's reminder store (restart-safe):

- remediation_expiry, due at the request's expiry: a request still waiting is expired.
- remediation_watch, due once the execution timeout has surely passed: a request still
  running was left by a process that died mid-run; it is closed as "outcome unknown" and its
  requester and approvers are told. It is never run again.
"""

from __future__ import annotations

from bot.clock import Clock
from bot.escalation import storage as reminders
from bot.escalation.planner import Reminder, ReminderKind, ReminderStatus
from bot.escalation.service import EscalationService
from bot.remediation import storage as requests
from bot.remediation.service import RemediationService
from bot.remediation.storage import Status
from bot.store import Store


class _ClaimLost(Exception):
    pass


class RemediationReminders:
    def __init__(self, *, service: RemediationService, store: Store, clock: Clock) -> None:
        self.service = service
        self.store = store
        self.clock = clock

    def register(self, escalation: EscalationService) -> None:
        escalation.register_subject_kind(ReminderKind.REMEDIATION_EXPIRY, self.fire)
        escalation.register_subject_kind(ReminderKind.REMEDIATION_WATCH, self.fire)

    async def fire(self, reminder: Reminder, owner: str) -> bool:
        """Fire one claimed reminder; False when its claim was lost (cancelled meanwhile)."""
        now = self.clock.now()
        try:
            async with self.store.transaction() as tx:
                request_id = int(str(reminder.subject).rpartition(":")[2] or 0)
                request = await requests.get(tx, request_id, lock=True)
                status, outcome = ReminderStatus.SKIPPED, "nothing to do"
                if request is not None:
                    if (
                        reminder.kind is ReminderKind.REMEDIATION_EXPIRY
                        and request.status is Status.REQUESTED
                    ):
                        await self.service.expire(tx, request, now)
                        status, outcome = ReminderStatus.FIRED, "expired"
                    elif (
                        reminder.kind is ReminderKind.REMEDIATION_WATCH
                        and request.status is Status.RUNNING
                    ):
                        await self.service.runner.close_unknown(tx, request, now)
                        status, outcome = ReminderStatus.FIRED, "outcome unknown"
                if not await reminders.finish(tx, reminder.id, owner, status, now, outcome):
                    raise _ClaimLost
        except _ClaimLost:
            return False
        return True
