"""Firing a reminder exactly once, from any process: claim, lock, re-check, record.

After Grafana OnCall's escalation task (and the bugs its users met):

- The reminder is claimed with one conditional UPDATE (pending -> firing, this process as
  owner); a process that changes no row lost the race and stops. The claim is a short
  transaction of its own (the sweep claims overdue reminders in batches, SKIP LOCKED, so
  processes share them), so the loser stops at once instead of queueing behind the winner.
- Firing locks the reminder's incident row first, as every lifecycle change does: an ack or
  resolve in flight either commits first (and has withdrawn the reminder, claimed or not)
  or waits. The reminder is read again under that lock: still ours, still firing?
- The handler registered for its kind (bot.reminders.kinds) re-checks its own state and
  queues its notifications in the outbox, with the timeline line and the audit entry, in
  the transaction that marks the reminder fired (`bot.incidents.changes`); the outbox is
  kicked, and a follow-up reminder due soon is handed to the scheduler, only after that
  commit.

A process killed between claim and fire leaves claims that expire after `claim_seconds`; any
process's next sweep takes them over.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from enum import StrEnum

from bot import logs, metrics
from bot.clock import Clock
from bot.coordination.owner import owner_id
from bot.incidents import storage as incidents
from bot.incidents.changes import Change, IncidentChanges
from bot.models import Incident
from bot.reminders import storage as reminders
from bot.reminders.kinds import Firing, Kinds
from bot.reminders.model import Reminder, ReminderStatus
from bot.reminders.scheduling import ReminderScheduler
from bot.store import Store

log = logging.getLogger(__name__)


class FireResult(StrEnum):
    FIRED = "fired"
    SKIPPED = "skipped"  # due, but no longer wanted (acknowledged, resolved, stale...)
    NOT_CLAIMED = "not_claimed"  # not due, already fired or cancelled, or held by another
    LOST = "lost"  # claimed, then cancelled or taken over before it could fire
    MISSING = "missing"  # no such reminder


class _ClaimLost(Exception):
    """The reminder was cancelled or taken over between claim and fire: roll back."""


class ReminderFiring:
    """Claims and fires reminders for one process; several processes share one store."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        changes: IncidentChanges,
        scheduler: ReminderScheduler,
        kinds: Kinds,
        owner: str | None = None,
        claim_seconds: float = 30.0,
        batch_size: int = 100,
    ) -> None:
        self.store = store
        self.clock = clock
        self.changes = changes
        self.scheduler = scheduler
        self.kinds = kinds
        self.owner = owner or owner_id()
        self.claim_seconds = claim_seconds
        self.batch_size = batch_size

    async def fire(self, reminder_id: int) -> FireResult:
        """Claim one reminder and fire it if it is due and still wanted.

        The claim is its own short transaction that never waits on the incident: a process
        that loses the race changes no row and stops at once, rather than queueing behind
        the winner's firing.
        """
        now = self.clock.now()
        async with self.store.transaction() as tx:
            claimed = await reminders.claim(tx, reminder_id, self.owner, now, self.claim_seconds)
            if claimed is None:
                exists = await reminders.get(tx, reminder_id) is not None
                return FireResult.NOT_CLAIMED if exists else FireResult.MISSING
        return await self.fire_claimed(claimed)

    async def fire_due(self) -> int:
        """Fire every reminder that is due now; return how many fired (tests, the sweep)."""
        fired = 0
        while True:
            now = self.clock.now()
            async with self.store.transaction() as tx:
                claimed = await reminders.claim_due(
                    tx, self.owner, now, self.claim_seconds, self.batch_size
                )
            # One at a time, not through the job slots: a claimed batch must not queue
            # behind every job waiting for a slot (its claims would age meanwhile).
            for number, reminder in enumerate(claimed):
                if self.scheduler.stopping:
                    await self._release(claimed[number:])  # for the next process, at once
                    return fired
                try:
                    result = await self.fire_claimed(reminder)  # releases its own on failure
                except BaseException:
                    await self._release(claimed[number + 1 :])
                    raise
                if result is FireResult.FIRED:
                    fired += 1
            if len(claimed) < self.batch_size:
                return fired

    async def fire_claimed(self, reminder: Reminder) -> FireResult:
        """Fire a reminder this process has claimed, in a transaction that locks its incident."""
        with logs.bound(incident=reminder.incident_id):
            result = await self._fire_claimed(reminder)
        if result is FireResult.FIRED:
            metrics.REMINDERS_FIRED.labels(reminder.kind).inc()
            lateness = (self.clock.now() - reminder.due_at).total_seconds()
            metrics.REMINDER_LATENESS.observe(max(0.0, lateness))
        return result

    async def _fire_claimed(self, reminder: Reminder) -> FireResult:
        try:
            async with self.changes.begin() as change:
                # Lock order: incident, then reminder (as the lifecycle changes do).
                incident = None
                if reminder.incident_id:
                    incident = await incidents.get(change.tx, reminder.incident_id, lock=True)
                current = await reminders.get(change.tx, reminder.id)
                if (
                    current is None
                    or current.status is not ReminderStatus.FIRING
                    or current.claimed_by != self.owner
                ):
                    return FireResult.LOST
                if current.incident_id and incident is None:
                    await self._finish(change, current, ReminderStatus.SKIPPED, "no incident")
                    return FireResult.SKIPPED
                status = await self.fire_in(change, current, incident)
        except _ClaimLost:
            return FireResult.LOST
        except BaseException:
            await self._release([reminder])
            raise
        return FireResult.SKIPPED if status is ReminderStatus.SKIPPED else FireResult.FIRED

    async def fire_in(
        self, change: Change, reminder: Reminder, incident: Incident | None
    ) -> ReminderStatus:
        """Fire (or skip) a claimed reminder inside `change`, through its kind's handler;
        its incident row (if any) is locked. Closes the reminder and plans its follow-up."""
        handler = self.kinds.get(reminder.kind)
        if handler is None:
            # A kind this process does not know (a newer version planned it): say so, once.
            log.warning("reminder %s: no handler for kind %r", reminder.id, reminder.kind)
            firing = Firing(ReminderStatus.SKIPPED, f"no handler for {reminder.kind}")
        else:
            firing = await handler.fire(change, reminder, incident)
        await self._finish(change, reminder, firing.status, firing.outcome)
        if firing.follow_up is not None:
            tx, now = change.tx, change.now
            plan = reminder.plan if firing.plan is None else firing.plan
            new_id = await reminders.insert(
                tx, reminder.incident_id or None, plan, firing.follow_up, now
            )
            self.scheduler.hold_after_commit(tx, new_id, firing.follow_up.due_at, now)
        return firing.status

    async def _release(self, claimed: Sequence[Reminder]) -> None:
        # Hand claims back so the next sweep retries at once instead of after they expire.
        with contextlib.suppress(Exception):
            async with self.store.transaction() as tx:
                await reminders.release(tx, [r.id for r in claimed], self.owner)

    async def _finish(
        self, change: Change, reminder: Reminder, status: ReminderStatus, outcome: str
    ) -> None:
        if not await reminders.finish(
            change.tx, reminder.id, self.owner, status, change.now, outcome
        ):
            raise _ClaimLost(reminder.id)
