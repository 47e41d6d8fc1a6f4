"""Firing a reminder exactly once, from any process: claim, lock, re-check, record.

After Grafana OnCall's escalation task (and the bugs its users met):

- The reminder is claimed with one conditional UPDATE (pending -> firing, this process as
  owner); a process that changes no row lost the race and stops. The claim is a short
  transaction of its own (the sweep claims overdue reminders in batches, SKIP LOCKED, so
  processes share them), so the loser stops at once instead of queueing behind the winner.
- Firing locks the incident row first, as every lifecycle change does: an ack or resolve in
  flight either commits first (and has withdrawn the reminder, claimed or not) or waits.
  The reminder is read again under that lock: still ours, still firing?
- `planner.skip_reason` re-checks the incident (acknowledged? resolved? an older plan?).
- The notifications go into the outbox, with the timeline line and the audit entry, in the
  transaction that marks the reminder fired (`bot.incidents.changes`); the outbox is kicked,
  and a follow-up reminder due soon is handed to the scheduler, only after that commit.

A process killed between claim and fire leaves claims that expire after `claim_seconds`; any
process's next sweep takes them over.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from enum import StrEnum

from bot import logs, metrics
from bot.clock import Clock
from bot.coordination.owner import owner_id
from bot.durations import humanize_seconds
from bot.escalation import planner
from bot.escalation import storage as reminders
from bot.escalation.delivery import BREACH, PAGE_FANOUT, PAGE_POST, REMIND
from bot.escalation.extensions import ProviderPages, ReminderHandler
from bot.escalation.planner import (
    EscalationState,
    PlannedReminder,
    Reminder,
    ReminderKind,
    ReminderStatus,
)
from bot.escalation.scheduling import ReminderScheduler
from bot.incidents import storage as incidents
from bot.incidents.changes import Change, IncidentChanges, Queued
from bot.models import SYSTEM, Actor, Incident, Severity, mention
from bot.notify import Page
from bot.paging.config import PROVIDER_NAMES, PROVIDERS
from bot.policy import Policy
from bot.store import Store

_BREACH_TARGET = {
    ReminderKind.ACK_BREACH: "acknowledge",
    ReminderKind.RESOLVE_BREACH: "resolve",
}


class FireResult(StrEnum):
    FIRED = "fired"
    SKIPPED = "skipped"  # due, but no longer wanted (acknowledged, resolved, stale...)
    NOT_CLAIMED = "not_claimed"  # not due, already fired or cancelled, or held by another
    LOST = "lost"  # claimed, then cancelled or taken over before it could fire
    MISSING = "missing"  # no such reminder


class _ClaimLost(Exception):
    """The reminder was cancelled or taken over between claim and fire: roll back."""


def _mentions(targets: Sequence[str]) -> str:
    def one(target: str) -> str:
        if target in PROVIDERS:
            return PROVIDER_NAMES[target]  # a paging service, by name
        return f"<!subteam^{target}>" if target.startswith("S") else f"<@{target}>"

    return " ".join(one(target) for target in targets)


# Fires a claimed reminder about a `subject` (not an incident) in its own transaction, closing
# it with storage.finish(..., owner, ...); False when the claim was lost meanwhile.
SubjectHandler = Callable[[Reminder, str], Awaitable[bool]]


class ReminderFiring:
    """Claims and fires reminders for one process; several processes share one store."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        policy: Policy,
        changes: IncidentChanges,
        scheduler: ReminderScheduler,
        owner: str | None = None,
        claim_seconds: float = 30.0,
        batch_size: int = 100,
    ) -> None:
        self.store = store
        self.clock = clock
        self.policy = policy
        self.changes = changes
        self.scheduler = scheduler
        self.owner = owner or owner_id()
        self.claim_seconds = claim_seconds
        self.batch_size = batch_size
        self.handlers: dict[ReminderKind, ReminderHandler] = {}
        self.subject_handlers: dict[ReminderKind, SubjectHandler] = {}
        # Pages the paging services a level names (bot.paging); None: Slack only.
        self.provider_pages: ProviderPages | None = None

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
        subject_handler = self.subject_handlers.get(reminder.kind)
        if subject_handler is not None:
            try:
                fired = await subject_handler(reminder, self.owner)
            except BaseException:
                await self._release([reminder])
                raise
            return FireResult.FIRED if fired else FireResult.LOST
        try:
            async with self.changes.begin() as change:
                # Lock order: incident, then reminder (as the lifecycle changes do).
                incident = await incidents.get(change.tx, reminder.incident_id, lock=True)
                current = await reminders.get(change.tx, reminder.id)
                if (
                    current is None
                    or current.status is not ReminderStatus.FIRING
                    or current.claimed_by != self.owner
                ):
                    return FireResult.LOST
                if incident is None:
                    await self._finish(change, current, ReminderStatus.SKIPPED, "no incident")
                    return FireResult.SKIPPED
                state = await reminders.get_state(change.tx, incident.id)
                state = state or planner.initial_state(incident)
                status, _ = await self.fire_in(change, current, incident, state)
        except _ClaimLost:
            return FireResult.LOST
        except BaseException:
            await self._release([reminder])
            raise
        return FireResult.SKIPPED if status is ReminderStatus.SKIPPED else FireResult.FIRED

    async def fire_in(
        self,
        change: Change,
        reminder: Reminder,
        incident: Incident,
        state: EscalationState,
    ) -> tuple[ReminderStatus, EscalationState]:
        """Fire (or skip) a claimed reminder inside `change`; the incident row is locked."""
        tx, now = change.tx, change.now
        handler = self.handlers.get(reminder.kind)
        if handler is not None:
            firing = await handler.fire(tx, reminder, incident, now)
            await self._finish(change, reminder, firing.status, firing.outcome)
            if firing.follow_up is not None:
                new_id = await reminders.insert(
                    tx, incident.id, reminder.plan, firing.follow_up, now
                )
                self.scheduler.hold_after_commit(tx, new_id, firing.follow_up.due_at, now)
            return firing.status, state
        reason = planner.skip_reason(reminder, incident, state, now)
        if reason is not None:
            await self._finish(change, reminder, ReminderStatus.SKIPPED, reason)
            return ReminderStatus.SKIPPED, state
        new_state = state
        follow_up: PlannedReminder | None = None
        if reminder.kind is ReminderKind.PAGE:
            targets = self._level_targets(incident.severity, reminder)
            waited = (now - state.anchor_at).total_seconds()
            since = "declared" if state.anchor_at == incident.declared_at else "reopened"
            page = Page(reminder.level, targets, waited=waited, since=since)
            await self.page(change, incident, reminder.id, page)
            new_state = replace(state, level=max(state.level, reminder.level))
            outcome = f"paged level {reminder.level}"
        elif reminder.kind in _BREACH_TARGET:
            new_state = await self._breach(change, reminder, incident, state)
            outcome = "breach recorded"
        elif reminder.kind is ReminderKind.UPDATE_DUE:
            await self._remind(change, reminder, incident)
            # Unanswered, it repeats at the cadence until an update re-plans it.
            follow_up = planner.next_update_reminder(reminder, incident, self.policy, now)
            outcome = "reminded"
        else:
            await self._remind(change, reminder, incident)
            outcome = "reminded"
        await self._finish(change, reminder, ReminderStatus.FIRED, outcome)
        if follow_up is not None:
            new_id = await reminders.insert(tx, incident.id, state.plan, follow_up, now)
            self.scheduler.hold_after_commit(tx, new_id, follow_up.due_at, now)
        if new_state != state:
            await reminders.save_state(tx, new_state, now)
        return ReminderStatus.FIRED, new_state

    async def page(
        self,
        change: Change,
        incident: Incident,
        reminder_id: int,
        page: Page,
        *,
        actor: Actor = SYSTEM,
    ) -> None:
        """Record a page and queue its post and its DMs (scheduled, or by hand)."""
        payload = {
            "reminder_id": reminder_id,
            "level": page.level,
            "targets": list(page.targets),
            "waited": page.waited,
            "by": page.by,
            "reason": page.reason,
            "since": page.since,
            "acknowledged": incident.acknowledged_at is not None,
        }
        text = f"Paged level {page.level}: {_mentions(page.targets)}"
        if page.by:
            # The reason ends the line: it is the person's words (TimelineEvent.said).
            text += f", escalated by {mention(page.by)}" + (
                f": {page.reason}" if page.reason else ""
            )
        elif page.waited:
            text += f" (not acknowledged after {humanize_seconds(page.waited)})"
        else:
            text += " (on declaration)" if page.since == "declared" else " (on reopening)"
        await change.record(
            incident.id,
            kind="paged",
            text=text,
            said=page.reason if page.by else "",
            action="escalation.page",
            actor=actor.user_id,
            args={"level": page.level, "targets": list(page.targets), "reason": page.reason},
            data={"reminder_id": reminder_id, "level": page.level},
            effects=[Queued(PAGE_POST, payload), Queued(PAGE_FANOUT, payload)],
        )
        providers = [target for target in page.targets if target in PROVIDERS]
        if providers and self.provider_pages is not None:
            await self.provider_pages.page(
                change,
                incident,
                providers,
                page.level,
                acknowledged=incident.acknowledged_at is not None,
            )

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

    def _level_targets(self, severity: Severity, reminder: Reminder) -> tuple[str, ...]:
        # Whoever the policy names now (the rota may have changed since planning).
        levels = self.policy.levels(severity)
        if 1 <= reminder.level <= len(levels):
            return tuple(levels[reminder.level - 1].notify)
        return reminder.notify

    async def _breach(
        self,
        change: Change,
        reminder: Reminder,
        incident: Incident,
        state: EscalationState,
    ) -> EscalationState:
        target = _BREACH_TARGET[reminder.kind]
        targets = self.policy.targets(incident.severity)
        within = targets.ack_within if target == "acknowledge" else targets.resolve_within
        warning = {
            "reminder_id": reminder.id,
            "target": target,
            "within": str(within),
            "due_at": reminder.due_at.timestamp(),
        }
        verb = "acknowledged" if target == "acknowledge" else "resolved"
        await change.record(
            incident.id,
            actor=SYSTEM.user_id,
            kind="target_breached",
            text=f"Not {verb} within {within} ({incident.severity} target): target breached",
            action="escalation.breach",
            args={"target": target, "within": str(within), "due_at": reminder.due_at.isoformat()},
            data={"reminder_id": reminder.id, "target": target},
            effects=[Queued(BREACH, warning)],
        )
        if target == "acknowledge":
            return replace(state, ack_breached_at=change.now)
        return replace(state, resolve_breached_at=change.now)

    async def _remind(self, change: Change, reminder: Reminder, incident: Incident) -> None:
        # The lead by direct message; an incident nobody leads (the bot declared it) is
        # reminded in its channel, to the first escalation level's Slack targets.
        user_id = incident.lead
        levels = self.policy.levels(incident.severity)
        on_call = levels[0].slack_targets if user_id is None and levels else []
        whom = f"<@{user_id}>" if user_id else f"{_mentions(on_call)} in the incident channel"
        if reminder.kind is ReminderKind.UPDATE_DUE:
            every = self.policy.targets(incident.severity).update_every
            within = str(every) if every else ""
            text = f"Reminded {whom} that a status update is due"
        else:
            reviews = self.policy.reviews
            preliminary = reminder.kind is ReminderKind.PRELIMINARY_REVIEW
            within = str(reviews.preliminary_within if preliminary else reviews.formal_within)
            name = "preliminary" if preliminary else "formal"
            text = f"Reminded {whom} that the {name} review is due ({within} after)"
        reminder_payload = {
            "reminder_id": reminder.id,
            "kind": reminder.kind.value,
            "user_id": user_id,
            "mentions": on_call,
            "due_at": reminder.due_at.timestamp(),
            "within": within,
        }
        await change.record(
            incident.id,
            actor=SYSTEM.user_id,
            kind="reminded",
            text=text,
            action=f"escalation.{reminder.kind.value}",
            args={
                **({"user": user_id} if user_id else {"mentions": on_call}),
                "due_at": reminder.due_at.isoformat(),
            },
            data={"reminder_id": reminder.id, "reminder": reminder.kind.value},
            effects=[Queued(REMIND, reminder_payload)],
        )
