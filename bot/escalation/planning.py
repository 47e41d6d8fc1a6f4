"""Planning reminders as incidents change: escalation's IncidentListener.

Inside the very transaction that declares, acknowledges, resolves, reopens or re-grades an
incident, the reminders it no longer needs are cancelled and the new ones written
(`planner.plan_change` decides which). A reminder due at once (level 1) is fired in that
transaction, so it commits with the change or not at all; one due soon is handed to the
in-memory scheduler only after the commit.
"""

from __future__ import annotations

from bot.escalation import planner
from bot.escalation.firing import EscalationFiring
from bot.incidents.changes import IncidentChange, IncidentChanges
from bot.policy import Policy
from bot.reminders import storage as reminders
from bot.reminders.engine import ReminderEngine
from bot.reminders.model import Reminder, ReminderStatus
from bot.store import Tx


class ReminderPlanning:
    """Cancels and plans reminders in the transaction of each incident change."""

    def __init__(
        self,
        *,
        policy: Policy,
        changes: IncidentChanges,
        engine: ReminderEngine,
        states: EscalationFiring,
    ) -> None:
        self.policy = policy
        self.changes = changes
        self.engine = engine
        self.states = states

    async def incident_changed(self, tx: Tx, change: IncidentChange) -> None:
        """Cancel and plan reminders for `change`, inside the transaction that made it."""
        if change.kind == "escalated":
            return  # a page by hand: the manual escalation wrote its own reminder
        incident = change.after
        now = change.at
        # A new incident has no escalation state yet: nothing to read.
        stored = (
            None if change.kind == "declared" else await self.states.current_state(tx, incident.id)
        )
        state = stored or planner.initial_state(incident)
        paged = await self._paged(tx, change, state)
        replan = planner.plan_change(
            change.kind, change.before, incident, self.policy, state, now, paged
        )
        if replan.is_empty and replan.state == state:
            return
        if replan.cancel:
            await reminders.cancel(tx, incident.id, replan.cancel, now, change.kind)
        state = replan.state
        # Held to the commit: the page fired below reads it from memory, and saves over it.
        self.states.hold_state(tx, state, now)
        # All in one statement. One due at once (level 1, or a level the new severity has
        # already reached) is inserted claimed by this process and fired in this
        # transaction, so it commits with the change or not at all.
        written = await reminders.insert_many(
            tx,
            incident.id,
            state.plan,
            replan.reminders,
            now,
            owner=self.engine.owner,
            claimed_until=now.timestamp() + self.engine.claim_seconds,
        )
        due_now: list[Reminder] = []
        for planned, reminder in zip(replan.reminders, written, strict=True):
            if reminder.status is ReminderStatus.FIRING:
                due_now.append(reminder)
            else:
                self.engine.hold_after_commit(tx, reminder.id, planned.due_at, now)
        firing = self.changes.joining(tx, now)
        for reminder in due_now:
            # The escalation handler reads and saves the state written above, in this tx.
            await self.engine.firing.fire_in(firing, reminder, incident)

    @staticmethod
    async def _paged(
        tx: Tx, change: IncidentChange, state: planner.EscalationState
    ) -> frozenset[str]:
        """Whom this escalation has paged so far, when a raised severity may page more."""
        before = change.before
        if change.kind != "severity_changed" or before is None or state.level == 0:
            return frozenset()
        if change.after.acknowledged_at is not None:
            return frozenset()
        fired = await reminders.for_incident(tx, change.after.id, [ReminderStatus.FIRED])
        return frozenset(
            target
            for reminder in fired
            if reminder.kind == planner.ReminderKind.PAGE
            and reminder.fired_at is not None
            and reminder.fired_at >= state.anchor_at
            for target in reminder.notify
        )
