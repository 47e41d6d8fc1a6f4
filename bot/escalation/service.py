"""EscalationService: plans reminders as incidents change and fires each one exactly once.

The store is the source of truth. The service is an IncidentListener: inside the very
transaction that declares, acknowledges, resolves, reopens or re-grades an incident it
cancels and plans reminder rows (planner.py decides which). APScheduler (in memory, per
process) only triggers: it holds jobs for the reminders due soon, and a periodic sweep
fires anything overdue and schedules what comes due next, wherever it was planned.

Firing, after Grafana OnCall's escalation task (and the bugs its users met):

- The reminder is claimed with one conditional UPDATE (pending -> firing, this process as
  owner); a process that changes no row lost the race and stops.
- Firing locks the incident row first, as every lifecycle change does: an ack or resolve in
  flight either commits first (and has withdrawn the reminder, claimed or not) or waits.
  The reminder is read again under that lock: still ours, still firing?
- `planner.skip_reason` re-checks the incident (acknowledged? resolved? an older plan?).
- The notifications go into the outbox, with the timeline line and the audit entry, in the
  transaction that marks the reminder fired; Slack is called only after the commit.

The claim is a short transaction of its own (the sweep claims overdue reminders in batches,
SKIP LOCKED, so processes share them), so the loser of a race stops at once instead of
queueing behind the winner. A process killed between claim and fire leaves claims that
expire after `claim_seconds`; any process's next sweep takes them over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot import dedup, outbox
from bot.clock import Clock, utc_from_timestamp
from bot.durations import humanize_seconds
from bot.errors import Conflict, DuplicateRequest, NotFound, NotifierError, PermissionDenied
from bot.escalation import planner
from bot.escalation import storage as reminders
from bot.escalation.planner import (
    EscalationState,
    PlannedReminder,
    Reminder,
    ReminderKind,
    ReminderStatus,
)
from bot.incidents import journal
from bot.incidents import storage as incidents
from bot.incidents.service import IncidentChange, IncidentListener
from bot.models import SYSTEM, Actor, Incident, Severity
from bot.notify import Notifier, Page
from bot.outbox import Effect, OutboxDispatcher
from bot.permissions import Permissions
from bot.policy import EscalationLevel, Policy
from bot.store import Store, Tx

log = logging.getLogger(__name__)

# Outbox effect kinds: one Slack post each, so a retry repeats only that post.
PAGE_POST = "escalation.page"
PAGE_FANOUT = "escalation.page_fanout"
PAGE_DM = "escalation.page_dm"
BREACH = "escalation.breach"
REMIND = "escalation.remind"

_BREACH_TARGET = {
    ReminderKind.ACK_BREACH: "acknowledge",
    ReminderKind.RESOLVE_BREACH: "resolve",
}
# A job that finds no row may have run before the planning transaction committed.
_MISSING_RETRIES = 10
_MISSING_RETRY_DELAY = 0.2


class FireResult(StrEnum):
    FIRED = "fired"
    SKIPPED = "skipped"  # due, but no longer wanted (acknowledged, resolved, stale...)
    NOT_CLAIMED = "not_claimed"  # not due, already fired or cancelled, or held by another
    LOST = "lost"  # claimed, then cancelled or taken over before it could fire
    MISSING = "missing"  # no such reminder (yet)


@dataclass(frozen=True, slots=True)
class Escalation:
    """What `/incident escalate` did."""

    incident: Incident
    level: int
    targets: tuple[str, ...]
    reminder_id: int
    last_level: int


@dataclass(frozen=True, slots=True)
class OnCallLevel:
    level: int
    after: float
    targets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OnCall:
    """Who stands at each escalation level of one severity, and its targets."""

    severity: Severity
    levels: tuple[OnCallLevel, ...]
    ack_within: str
    resolve_within: str
    update_every: str | None


# Fires a claimed reminder about a `subject` (not an incident) in its own transaction, closing
# it with storage.finish(..., owner, ...); False when the claim was lost meanwhile.
SubjectHandler = Callable[[Reminder, str], Awaitable[bool]]


class _ClaimLost(Exception):
    """The reminder was cancelled or taken over between claim and fire: roll back."""


def _owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _mentions(targets: Sequence[str]) -> str:
    return " ".join(f"<!subteam^{t}>" if t.startswith("S") else f"<@{t}>" for t in targets)


class EscalationService:
    """Escalation and reminders for every incident; one per process, all sharing a store."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        policy: Policy,
        dispatcher: OutboxDispatcher,
        notifier: Notifier,
        permissions: Permissions,
        listeners: Sequence[IncidentListener] = (),
        sweep_interval: float = 5.0,
        lookahead: float | None = None,
        claim_seconds: float = 30.0,
        batch_size: int = 100,
        max_concurrent_fires: int = 8,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.policy = policy
        self.dispatcher = dispatcher
        self.notifier = notifier
        self.permissions = permissions
        # The same list the incident service calls: told about manual escalations.
        self.listeners = listeners
        self.sweep_interval = sweep_interval
        # Jobs are held in memory only for reminders due this soon; the sweep brings the
        # rest in as their time approaches, so memory does not grow with open incidents.
        self.lookahead = lookahead if lookahead is not None else max(3 * sweep_interval, 10.0)
        self.claim_seconds = claim_seconds
        self.batch_size = batch_size
        self.owner = owner or _owner_id()
        self._fire_slots = asyncio.Semaphore(max_concurrent_fires)
        self._scheduler: AsyncIOScheduler | None = None
        self._scheduled: set[int] = set()
        self._inflight: set[asyncio.Task[Any]] = set()
        self._sweep_lock = asyncio.Lock()
        self._stopping = False
        self._subject_handlers: dict[ReminderKind, SubjectHandler] = {}

    # -- wiring -------------------------------------------------------------------------

    def register(self, dispatcher: OutboxDispatcher) -> None:
        """Say how the escalation effects are delivered."""
        dispatcher.register(PAGE_POST, self._deliver_page, on_failure=self._delivery_failed)
        dispatcher.register(PAGE_FANOUT, self._fan_out, on_failure=self._delivery_failed)
        dispatcher.register(PAGE_DM, self._deliver_dm, on_failure=self._delivery_failed)
        dispatcher.register(BREACH, self._deliver_breach, on_failure=self._delivery_failed)
        dispatcher.register(REMIND, self._deliver_reminder, on_failure=self._delivery_failed)

    def register_subject_kind(self, kind: ReminderKind, handler: SubjectHandler) -> None:
        """Fire reminders of `kind` (about a subject, not an incident) through `handler`."""
        self._subject_handlers[kind] = handler

    async def start(self) -> None:
        """Start the scheduler: an immediate sweep fires what came due while nobody ran."""
        if self._scheduler is not None:
            return
        self._stopping = False
        # APScheduler logs every job run at INFO: one line per reminder is noise here.
        logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
        scheduler = AsyncIOScheduler(
            timezone=UTC,
            # A job that runs late must still run (never "missed"): lateness is measured.
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )
        scheduler.start()
        scheduler.add_job(
            self.sweep,
            "interval",
            seconds=self.sweep_interval,
            id="escalation-sweep",
            next_run_time=datetime.now(UTC),
            max_instances=2,  # the second returns at once; avoids "skipped" warnings
        )
        self._scheduler = scheduler

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop triggering; let firings already under way finish (up to `timeout`)."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is None:
            return
        self._stopping = True  # jobs still waiting for a slot return without firing
        scheduler.remove_all_jobs()
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=timeout)
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0)  # AsyncIOScheduler shuts down on the next loop iteration
        self._scheduled.clear()
        self._stopping = False  # fire_due() and fire() still work by hand (tests, console)

    # -- planning (IncidentListener) ----------------------------------------------------

    async def incident_changed(self, tx: Tx, change: IncidentChange) -> None:
        """Cancel and plan reminders for `change`, inside the transaction that made it."""
        if change.kind == "escalated":
            return
        incident = change.after
        now = change.at
        state = await reminders.get_state(tx, incident.id) or planner.initial_state(incident)
        replan = planner.plan_change(change.kind, change.before, incident, self.policy, state, now)
        if replan.is_empty and replan.state == state:
            return
        if replan.cancel:
            await reminders.cancel(tx, incident.id, replan.cancel, now, change.kind)
        state = replan.state
        await reminders.save_state(tx, state, now)
        due_now: list[int] = []
        for planned in replan.reminders:
            if planned.due_at <= now:
                # Due at once (level 1, or a level the new severity has already reached):
                # fired in this transaction, so it commits with the change or not at all.
                due_now.append(
                    await reminders.insert(
                        tx,
                        incident.id,
                        state.plan,
                        planned,
                        now,
                        status=ReminderStatus.FIRING,
                        claimed_by=self.owner,
                        claimed_until=now.timestamp() + self.claim_seconds,
                    )
                )
                continue
            reminder_id = await reminders.insert(tx, incident.id, state.plan, planned, now)
            if planned.due_at <= now + timedelta(seconds=self.lookahead):
                # Not committed yet: a job that runs first finds no row and retries.
                self._schedule(reminder_id, planned.due_at)
        for reminder_id in due_now:
            reminder = await reminders.get(tx, reminder_id)
            assert reminder is not None
            _, state = await self._fire_in_tx(tx, reminder, incident, state, now)

    # -- firing -------------------------------------------------------------------------

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
        return await self._fire_claimed(claimed)

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
                if self._stopping:
                    await self._release(claimed[number:])  # for the next process, at once
                    return fired
                try:
                    result = await self._fire_claimed(reminder)  # releases its own on failure
                except BaseException:
                    await self._release(claimed[number + 1 :])
                    raise
                if result is FireResult.FIRED:
                    fired += 1
            if len(claimed) < self.batch_size:
                return fired

    async def sweep(self) -> int:
        """Fire what is overdue and schedule what comes due within the lookahead."""
        if self._sweep_lock.locked():
            return 0
        task = asyncio.current_task()
        if task is not None and self._scheduler is not None:
            self._inflight.add(task)  # stop() lets it finish rather than cancel its claims
        async with self._sweep_lock:
            try:
                fired = await self.fire_due()
                until = self.clock.now() + timedelta(seconds=self.lookahead)
                async with self.store.transaction() as tx:
                    upcoming = await reminders.upcoming(tx, until, limit=50_000)
                for reminder_id, due_at in upcoming:
                    self._schedule(reminder_id, due_at)
                return fired
            except Exception:
                # The store may be down: the next sweep tries again, nothing is lost.
                log.exception("escalation sweep failed; retrying at the next sweep")
                return 0
            finally:
                if task is not None:
                    self._inflight.discard(task)

    async def _fire_claimed(self, reminder: Reminder) -> FireResult:
        handler = self._subject_handlers.get(reminder.kind)
        if handler is not None:
            try:
                fired = await handler(reminder, self.owner)
            except BaseException:
                await self._release([reminder])
                raise
            return FireResult.FIRED if fired else FireResult.LOST
        now = self.clock.now()
        try:
            async with self.store.transaction() as tx:
                # Lock order: incident, then reminder (as the lifecycle changes do).
                incident = await incidents.get(tx, reminder.incident_id, lock=True)
                current = await reminders.get(tx, reminder.id)
                if (
                    current is None
                    or current.status is not ReminderStatus.FIRING
                    or current.claimed_by != self.owner
                ):
                    return FireResult.LOST
                status = await self._fire_locked(tx, current, incident, now)
        except _ClaimLost:
            return FireResult.LOST
        except BaseException:
            await self._release([reminder])
            raise
        if status is ReminderStatus.SKIPPED:
            return FireResult.SKIPPED
        self.dispatcher.kick()
        return FireResult.FIRED

    async def _fire_locked(
        self, tx: Tx, reminder: Reminder, incident: Incident | None, now: datetime
    ) -> ReminderStatus:
        """Fire a reminder claimed by this process; its incident row is locked by `tx`."""
        if incident is None:
            await self._finish(tx, reminder, ReminderStatus.SKIPPED, now, "no incident")
            return ReminderStatus.SKIPPED
        state = await reminders.get_state(tx, incident.id) or planner.initial_state(incident)
        status, _ = await self._fire_in_tx(tx, reminder, incident, state, now)
        return status

    async def _release(self, claimed: Sequence[Reminder]) -> None:
        # Hand claims back so the next sweep retries at once instead of after they expire.
        with contextlib.suppress(Exception):
            async with self.store.transaction() as tx:
                await reminders.release(tx, [r.id for r in claimed], self.owner)

    async def _fire_in_tx(
        self,
        tx: Tx,
        reminder: Reminder,
        incident: Incident,
        state: EscalationState,
        now: datetime,
    ) -> tuple[ReminderStatus, EscalationState]:
        """Fire (or skip) a reminder this process has claimed; the incident row is locked."""
        reason = planner.skip_reason(reminder, incident, state, now)
        if reason is not None:
            await self._finish(tx, reminder, ReminderStatus.SKIPPED, now, reason)
            return ReminderStatus.SKIPPED, state
        new_state = state
        follow_up: PlannedReminder | None = None
        if reminder.kind is ReminderKind.PAGE:
            targets = self._level_targets(incident.severity, reminder)
            waited = (now - state.anchor_at).total_seconds()
            since = "declared" if state.anchor_at == incident.declared_at else "reopened"
            page = Page(reminder.level, targets, waited=waited, since=since)
            await self._page(tx, incident, reminder.id, page, now)
            new_state = replace(state, level=max(state.level, reminder.level))
            outcome = f"paged level {reminder.level}"
        elif reminder.kind in _BREACH_TARGET:
            new_state = await self._breach(tx, reminder, incident, state, now)
            outcome = "breach recorded"
        elif reminder.kind is ReminderKind.UPDATE_DUE:
            await self._remind(tx, reminder, incident, now)
            # Unanswered, it repeats at the cadence until an update re-plans it.
            follow_up = planner.next_update_reminder(reminder, incident, self.policy, now)
            outcome = "reminded"
        else:
            await self._remind(tx, reminder, incident, now)
            outcome = "reminded"
        await self._finish(tx, reminder, ReminderStatus.FIRED, now, outcome)
        if follow_up is not None:
            new_id = await reminders.insert(tx, incident.id, state.plan, follow_up, now)
            if follow_up.due_at <= now + timedelta(seconds=self.lookahead):
                self._schedule(new_id, follow_up.due_at)
        if new_state != state:
            await reminders.save_state(tx, new_state, now)
        return ReminderStatus.FIRED, new_state

    async def _finish(
        self, tx: Tx, reminder: Reminder, status: ReminderStatus, now: datetime, outcome: str
    ) -> None:
        if not await reminders.finish(tx, reminder.id, self.owner, status, now, outcome):
            raise _ClaimLost(reminder.id)

    def _level_targets(self, severity: Severity, reminder: Reminder) -> tuple[str, ...]:
        # Whoever the policy names now (the rota may have changed since planning).
        levels = self.policy.levels(severity)
        if 1 <= reminder.level <= len(levels):
            return tuple(levels[reminder.level - 1].notify)
        return reminder.notify

    async def _page(
        self,
        tx: Tx,
        incident: Incident,
        reminder_id: int,
        page: Page,
        now: datetime,
        *,
        actor: Actor = SYSTEM,
        request_id: str | None = None,
    ) -> None:
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
        await outbox.enqueue(tx, now, PAGE_POST, payload, incident_id=incident.id)
        await outbox.enqueue(tx, now, PAGE_FANOUT, payload, incident_id=incident.id)
        if page.by:
            why = f"escalated by <@{page.by}>" + (f": {page.reason}" if page.reason else "")
        elif page.waited:
            why = f"not acknowledged after {humanize_seconds(page.waited)}"
        else:
            why = "on declaration" if page.since == "declared" else "on reopening"
        await journal.record(
            tx,
            now,
            incident.id,
            kind="paged",
            text=f"Paged level {page.level} ({why}): {_mentions(page.targets)}",
            action="escalation.page",
            actor=actor.user_id,
            args={"level": page.level, "targets": list(page.targets), "reason": page.reason},
            data={"reminder_id": reminder_id, "level": page.level},
            request_id=request_id,
        )

    async def _breach(
        self,
        tx: Tx,
        reminder: Reminder,
        incident: Incident,
        state: EscalationState,
        now: datetime,
    ) -> EscalationState:
        target = _BREACH_TARGET[reminder.kind]
        targets = self.policy.targets(incident.severity)
        within = targets.ack_within if target == "acknowledge" else targets.resolve_within
        await outbox.enqueue(
            tx,
            now,
            BREACH,
            {
                "reminder_id": reminder.id,
                "target": target,
                "within": str(within),
                "due_at": reminder.due_at.timestamp(),
            },
            incident_id=incident.id,
        )
        verb = "acknowledged" if target == "acknowledge" else "resolved"
        await journal.record(
            tx,
            now,
            incident.id,
            actor=SYSTEM.user_id,
            kind="target_breached",
            text=f"Not {verb} within {within} ({incident.severity} target): target breached",
            action="escalation.breach",
            args={"target": target, "within": str(within), "due_at": reminder.due_at.isoformat()},
            data={"reminder_id": reminder.id, "target": target},
        )
        if target == "acknowledge":
            return replace(state, ack_breached_at=now)
        return replace(state, resolve_breached_at=now)

    async def _remind(self, tx: Tx, reminder: Reminder, incident: Incident, now: datetime) -> None:
        user_id = incident.commander or incident.declared_by
        if reminder.kind is ReminderKind.UPDATE_DUE:
            every = self.policy.targets(incident.severity).update_every
            within = str(every) if every else ""
            text = f"Reminded <@{user_id}> that a status update is due"
        else:
            reviews = self.policy.reviews
            preliminary = reminder.kind is ReminderKind.PRELIMINARY_REVIEW
            within = str(reviews.preliminary_within if preliminary else reviews.formal_within)
            name = "preliminary" if preliminary else "formal"
            text = f"Reminded <@{user_id}> that the {name} review is due ({within} after)"
        await outbox.enqueue(
            tx,
            now,
            REMIND,
            {
                "reminder_id": reminder.id,
                "kind": reminder.kind.value,
                "user_id": user_id,
                "due_at": reminder.due_at.timestamp(),
                "within": within,
            },
            incident_id=incident.id,
        )
        await journal.record(
            tx,
            now,
            incident.id,
            actor=SYSTEM.user_id,
            kind="reminded",
            text=text,
            action=f"escalation.{reminder.kind.value}",
            args={"user": user_id, "due_at": reminder.due_at.isoformat()},
            data={"reminder_id": reminder.id, "reminder": reminder.kind.value},
        )

    # -- scheduling ---------------------------------------------------------------------

    def _schedule(self, reminder_id: int, due_at: datetime) -> None:
        """Hold an in-memory job that fires the reminder at `due_at` (one per reminder)."""
        if self._scheduler is None or reminder_id in self._scheduled:
            return  # already held (or running): the sweep finds it again while it is pending
        # The service clock may be a fake one: keep the delay, run on the real clock.
        delay = max(0.0, (due_at - self.clock.now()).total_seconds())
        self._scheduled.add(reminder_id)
        self._scheduler.add_job(
            self._run_job,
            "date",
            run_date=datetime.now(UTC) + timedelta(seconds=delay),
            args=[reminder_id, due_at.timestamp()],
            id=f"reminder-{reminder_id}",
            replace_existing=True,
        )

    async def _run_job(self, reminder_id: int, due_ts: float) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            await self._run_reminder(reminder_id, due_ts)
        except Exception:
            # Left pending (or its claim expires): the sweep fires it later.
            log.exception("reminder %s: firing failed; the sweep will retry", reminder_id)
        finally:
            self._scheduled.discard(reminder_id)
            if task is not None:
                self._inflight.discard(task)

    async def _run_reminder(self, reminder_id: int, due_ts: float) -> None:
        early = due_ts - self.clock.now().timestamp()
        if early > 1.0:
            return  # the clock was moved back: the sweep schedules it again in time
        if early > 0:
            # Timers may wake a hair early; never fire before the due time (waits honoured).
            await asyncio.sleep(early)
        for _ in range(_MISSING_RETRIES):
            async with self._fire_slots:
                if self._stopping:
                    return  # still pending: whichever process runs next fires it
                result = await self.fire(reminder_id)
            if result is not FireResult.MISSING:
                return
            # Planned by a transaction that has not committed yet (or rolled back).
            await asyncio.sleep(_MISSING_RETRY_DELAY)

    # -- manual escalation --------------------------------------------------------------

    async def escalate(
        self,
        incident_id: str,
        actor: Actor,
        reason: str = "",
        request_id: str | None = None,
    ) -> Escalation:
        """Page the next escalation level now, by hand (`/incident escalate`, the button).

        The level after the highest paged so far is paged at once (its scheduled page, if
        any, is withdrawn); later levels keep their times. Audited and on the timeline.
        Raises PermissionDenied (not a responder), NotFound, Conflict (resolved, or every
        level already paged), DuplicateRequest (a Slack retry).
        """
        if not await self.permissions.allows(actor, "responders"):
            raise PermissionDenied("Only responders may escalate incidents.")
        reason = " ".join(reason.split())[:500]
        now = self.clock.now()
        async with self.store.transaction() as tx:
            if not await dedup.mark_handled(tx, request_id, now):
                raise DuplicateRequest("This request was already handled.")
            incident = await incidents.get(tx, incident_id.upper(), lock=True)
            if incident is None:
                raise NotFound(f"There is no incident {incident_id}.")
            if not incident.is_open:
                raise Conflict(f"{incident.id} is resolved; reopen it before escalating.")
            state = await reminders.get_state(tx, incident.id) or planner.initial_state(incident)
            levels = self.policy.levels(state.severity)
            chosen = planner.next_level(self.policy, state)
            if chosen is None:
                if not levels:
                    raise Conflict(f"{incident.severity} has no escalation levels to page.")
                raise Conflict(
                    f"{incident.id} has already paged every escalation level "
                    f"({len(levels)}) of {incident.severity}."
                )
            level, spec = chosen
            planned = PlannedReminder(ReminderKind.PAGE, now, level, tuple(spec.notify))
            await reminders.cancel_level(tx, incident.id, level, now, "paged by hand")
            reminder_id = await reminders.insert(
                tx,
                incident.id,
                state.plan,
                planned,
                now,
                status=ReminderStatus.FIRING,
                claimed_by=self.owner,
                claimed_until=now.timestamp() + self.claim_seconds,
                reason=reason,
                actor=actor.user_id,
            )
            page = Page(level, tuple(spec.notify), by=actor.user_id, reason=reason)
            await self._page(
                tx, incident, reminder_id, page, now, actor=actor, request_id=request_id
            )
            await reminders.finish(
                tx, reminder_id, self.owner, ReminderStatus.FIRED, now, "paged by hand"
            )
            await reminders.save_state(tx, replace(state, level=level), now)
            change = IncidentChange(
                "escalated", incident, incident, actor, now, {"level": level, "reason": reason}
            )
            for listener in self.listeners:
                if listener is not self:
                    await listener.incident_changed(tx, change)
        self.dispatcher.kick()
        return Escalation(incident, level, tuple(spec.notify), reminder_id, len(levels))

    # -- reading ------------------------------------------------------------------------

    def oncall(self, severity: Severity | None = None) -> list[OnCall]:
        """Who stands at each escalation level, per severity (all severities by default)."""
        chosen = [severity] if severity is not None else list(Severity)
        rows = []
        for sev in chosen:
            targets = self.policy.targets(sev)
            levels: list[EscalationLevel] = self.policy.levels(sev)
            rows.append(
                OnCall(
                    severity=sev,
                    levels=tuple(
                        OnCallLevel(number, level.after.seconds, tuple(level.notify))
                        for number, level in enumerate(levels, start=1)
                    ),
                    ack_within=str(targets.ack_within),
                    resolve_within=str(targets.resolve_within),
                    update_every=str(targets.update_every) if targets.update_every else None,
                )
            )
        return rows

    async def reminders_for(
        self, incident_id: str, statuses: Sequence[ReminderStatus] = ()
    ) -> list[Reminder]:
        """An incident's reminders (all, or those in `statuses`), soonest first."""
        async with self.store.transaction() as tx:
            return await reminders.for_incident(tx, incident_id.upper(), statuses)

    async def state(self, incident_id: str) -> EscalationState | None:
        """Where the incident's escalation stands (None before it was ever planned)."""
        async with self.store.transaction() as tx:
            return await reminders.get_state(tx, incident_id.upper())

    # -- delivery (outbox handlers, after commit) ---------------------------------------

    async def _incident(self, effect: Effect) -> Incident | None:
        async with self.store.transaction() as tx:
            return await incidents.get(tx, effect.incident_id or "")

    def _channel(self, incident: Incident) -> str:
        return incident.channel_id or self.policy.announce_channel

    @staticmethod
    def _page_of(payload: dict[str, Any]) -> Page:
        return Page(
            level=int(payload["level"]),
            targets=tuple(payload["targets"]),
            waited=payload.get("waited"),
            by=payload.get("by"),
            reason=payload.get("reason") or "",
            since=payload.get("since") or "declared",
        )

    @staticmethod
    def _withdrawn(incident: Incident, payload: dict[str, Any]) -> bool:
        # Acknowledged or resolved after the page fired: nobody needs it any more (a page
        # queued behind a Slack outage must not ring someone after the ack). A page made by
        # hand for an incident already acknowledged is wanted all the same.
        if not incident.is_open:
            return True
        return incident.acknowledged_at is not None and not payload.get("acknowledged")

    async def _deliver_page(self, effect: Effect) -> None:
        incident = await self._incident(effect)
        if incident is None or self._withdrawn(incident, effect.payload):
            return
        await self.notifier.page(
            incident, self._page_of(effect.payload), channel=self._channel(incident)
        )

    async def _fan_out(self, effect: Effect) -> None:
        """Expand the page's user groups and queue one DM per person, each once."""
        incident = await self._incident(effect)
        if incident is None or self._withdrawn(incident, effect.payload):
            return
        users: list[str] = []
        unreadable: list[tuple[str, NotifierError]] = []
        for target in effect.payload["targets"]:
            try:
                members = await self.permissions.expand([target])
            except NotifierError as exc:
                if exc.retryable:
                    raise  # the outbox tries again later
                unreadable.append((target, exc))  # the others are still paged
                continue
            users.extend(member for member in members if member not in users)
        now = self.clock.now()
        reminder_id = int(effect.payload["reminder_id"])
        async with self.store.transaction() as tx:
            for group, error in unreadable:
                code = error.error_code or str(error)
                await journal.record(
                    tx,
                    now,
                    incident.id,
                    actor=SYSTEM.user_id,
                    kind="notification_failed",
                    text=f"Page could not read <!subteam^{group}>: {code}",
                    action=PAGE_FANOUT,
                    args={"reminder_id": reminder_id, "group": group},
                    data={"reminder_id": reminder_id},
                    outcome=f"failed: {code}",
                )
            for user_id in users:
                # A rerun of this effect (crash before it was marked done) adds no one twice.
                if await reminders.add_recipient(tx, reminder_id, user_id, now):
                    await outbox.enqueue(
                        tx,
                        now,
                        PAGE_DM,
                        {**effect.payload, "user_id": user_id},
                        incident_id=incident.id,
                    )
        self.dispatcher.kick()

    async def _deliver_dm(self, effect: Effect) -> None:
        incident = await self._incident(effect)
        if incident is None or self._withdrawn(incident, effect.payload):
            return
        await self.notifier.page_user(
            incident,
            self._page_of(effect.payload),
            user_id=effect.payload["user_id"],
            channel=self._channel(incident),
        )

    async def _deliver_breach(self, effect: Effect) -> None:
        incident = await self._incident(effect)
        if incident is None:
            return
        await self.notifier.warn_breach(
            incident,
            channel=self._channel(incident),
            target=effect.payload["target"],
            within=effect.payload["within"],
            due_at=utc_from_timestamp(effect.payload["due_at"]),
            mention=incident.commander or incident.declared_by,
        )

    async def _deliver_reminder(self, effect: Effect) -> None:
        incident = await self._incident(effect)
        if incident is None:
            return
        kind = effect.payload["kind"]
        if kind == ReminderKind.UPDATE_DUE and not incident.is_open:
            return
        await self.notifier.remind(
            incident,
            user_id=effect.payload["user_id"],
            kind=kind,
            due_at=utc_from_timestamp(effect.payload["due_at"]),
            within=effect.payload.get("within") or "",
        )

    async def _delivery_failed(self, effect: Effect, error: NotifierError) -> None:
        """A page or reminder that can never be delivered: on the timeline and audited."""
        incident = await self._incident(effect)
        if incident is None:
            return
        code = error.error_code or str(error)
        who = effect.payload.get("user_id")
        what = {
            PAGE_POST: "Page post",
            PAGE_FANOUT: "Page (reading user groups)",
            PAGE_DM: f"Page DM to <@{who}>",
            BREACH: "Breach warning",
            REMIND: f"Reminder to <@{who}>",
        }.get(effect.kind, effect.kind)
        now = self.clock.now()
        async with self.store.transaction() as tx:
            await journal.record(
                tx,
                now,
                incident.id,
                actor=SYSTEM.user_id,
                kind="notification_failed",
                text=f"{what} failed: {code}",
                action=effect.kind,
                args={"reminder_id": effect.payload.get("reminder_id"), "user": who},
                data={"reminder_id": effect.payload.get("reminder_id")},
                outcome=f"failed: {code}",
            )
