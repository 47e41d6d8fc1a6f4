"""Firing reminders exactly once, from any process: claim, lock, re-check, record, in batches.

After Grafana OnCall's escalation task (and the bugs its users met):

- Reminders are claimed with one conditional UPDATE per batch (pending -> firing, this
  process as owner); a reminder the UPDATE does not change was lost to another process (or is
  not due, or is gone) and is left alone. The claim is a short transaction of its own (rows
  another process is claiming are skipped, SKIP LOCKED), so the loser stops at once instead
  of queueing behind the winner.
- A claimed batch fires in ONE transaction. It locks the batch's incident rows first, in id
  order with one statement, as every lifecycle change locks its incident: an ack or resolve
  in flight either commits first (and has withdrawn the reminder, claimed or not) or waits.
  The batch's reminders are read again under those locks (one statement): still ours, still
  firing? One that is not is left out.
- The handler registered for each reminder's kind (bot.reminders.kinds) re-checks its own
  state and records its timeline line, audit entry and outbox effects
  (`bot.incidents.changes`). The transaction buffers them: each kind of row is written with
  one multi-row INSERT per batch just before the commit, the reminders are closed with one
  UPDATE and their follow-ups planned with one INSERT. A firing in a batch of a few costs a
  few round trips, not the fourteen of one reminder per transaction (bench/README.md).
- The outbox is kicked, and a follow-up due soon handed to the scheduler, only after the
  commit.
- A handler that raises (or a claim lost between the re-read and the close) rolls the
  batch back; its reminders are then fired one per transaction, so one bad reminder costs
  the others nothing: it alone is handed back for a retry. When the store itself fails
  (unavailable, or busy past its bound) the whole batch is handed back at once.

`fire(reminder_id)`, the scheduler's job, joins the next batch: calls made while a batch is
being fired go together in the one after it (one claim, one firing transaction).

A process killed between claim and fire leaves claims that expire after `claim_seconds`; any
process's next sweep takes them over.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Mapping, Sequence
from enum import StrEnum

from bot import logs, metrics
from bot.clock import Clock
from bot.coordination.owner import owner_id
from bot.errors import StoreBusy, StoreUnavailable
from bot.incidents import journal
from bot.incidents import storage as incidents
from bot.incidents.changes import Change, IncidentChanges
from bot.models import Incident
from bot.outbox import queue as outbox
from bot.reminders import storage as reminders
from bot.reminders.kinds import Firing, Kinds, PreparesBatch
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


# What firing one claimed reminder came to: a result, or the error its handler raised.
Outcome = FireResult | Exception


class _ClaimLost(Exception):
    """A reminder was cancelled or taken over between the re-read and its close: roll back."""


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
        # fire() calls waiting for the next batch, by reminder id, and the task firing them.
        self._waiting: dict[int, list[asyncio.Future[FireResult]]] = {}
        self._drainer: asyncio.Task[None] | None = None

    async def fire(self, reminder_id: int) -> FireResult:
        """Claim one reminder and fire it if it is due and still wanted.

        It goes in the next batch of this process's fire() calls (one claim and one firing
        transaction for all of them). The claim never waits on an incident: a process that
        loses the race changes no row and stops at once, rather than queueing behind the
        winner's firing. Raises what its kind's handler raised (the claim is handed back).
        """
        future: asyncio.Future[FireResult] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(reminder_id, []).append(future)
        if self._drainer is None or self._drainer.done():
            # A context of its own: the caller's (its log fields, a command's CommitLog)
            # must not follow the batches it fires for others.
            self._drainer = asyncio.create_task(self._drain(), context=contextvars.Context())
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            ids = list(self._waiting)[: self.batch_size]
            futures = {reminder_id: self._waiting.pop(reminder_id) for reminder_id in ids}
            try:
                outcomes = await self._claim_and_fire(ids)
            except Exception as exc:  # the claim failed (the store is down): tell each caller
                outcomes = dict.fromkeys(ids, exc)
            except BaseException:
                for waiting in futures.values():
                    for future in waiting:
                        future.cancel()
                raise
            for reminder_id, waiting in futures.items():
                outcome = outcomes[reminder_id]
                for future in waiting:
                    if future.done():
                        continue  # its caller was cancelled
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)

    async def _claim_and_fire(self, reminder_ids: Sequence[int]) -> dict[int, Outcome]:
        now = self.clock.now()
        async with self.store.transaction() as tx:
            claimed = await reminders.claim_many(
                tx, reminder_ids, self.owner, now, self.claim_seconds
            )
            unclaimed = sorted(set(reminder_ids) - {r.id for r in claimed})
            present = await reminders.existing(tx, unclaimed)
        outcomes: dict[int, Outcome] = {
            reminder_id: FireResult.NOT_CLAIMED if reminder_id in present else FireResult.MISSING
            for reminder_id in unclaimed
        }
        outcomes.update(await self.fire_batch(claimed))
        return outcomes

    async def fire_due(self) -> int:
        """Fire every reminder that is due now; return how many fired (tests, the sweep)."""
        fired = 0
        while True:
            now = self.clock.now()
            async with self.store.transaction() as tx:
                claimed = await reminders.claim_due(
                    tx, self.owner, now, self.claim_seconds, self.batch_size
                )
            if claimed and self.scheduler.stopping:
                await self._release(claimed)  # for the next process, at once
                return fired
            outcomes = await self.fire_batch(claimed)
            fired += sum(outcome is FireResult.FIRED for outcome in outcomes.values())
            failures = [outcome for outcome in outcomes.values() if isinstance(outcome, Exception)]
            if failures:
                raise failures[0]  # handed back: the next sweep retries it
            if len(claimed) < self.batch_size:
                return fired

    async def fire_claimed(self, reminder: Reminder) -> FireResult:
        """Fire a reminder this process has claimed, in a transaction that locks its incident;
        raises what its handler raised (the claim handed back)."""
        outcome = (await self.fire_batch([reminder]))[reminder.id]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def fire_batch(self, claimed: Sequence[Reminder]) -> dict[int, Outcome]:
        """Fire reminders this process has claimed, together in one transaction; when that
        fails, one per transaction. A reminder whose handler raised is handed back."""
        if not claimed:
            return {}
        try:
            outcomes: dict[int, Outcome] = dict(await self._fire_together(claimed))
        except (StoreUnavailable, StoreBusy) as exc:
            # The store failed, not a reminder: one transaction each would fail alike (and
            # wait out the store's bound each time). Hand the claims back; the sweep retries.
            await self._release(claimed)
            return dict.fromkeys((r.id for r in claimed), exc)
        except Exception as exc:
            if len(claimed) > 1:
                log.info(
                    "a batch of %d reminders failed (%s); firing them one by one", len(claimed), exc
                )
                outcomes = {}
                for reminder in claimed:
                    outcomes.update(await self.fire_batch([reminder]))
                return outcomes
            if isinstance(exc, _ClaimLost):
                return {claimed[0].id: FireResult.LOST}
            await self._release(claimed)
            return {claimed[0].id: exc}
        except BaseException:
            await self._release(claimed)
            raise
        now = self.clock.now()
        for reminder in claimed:
            if outcomes[reminder.id] is FireResult.FIRED:
                metrics.REMINDERS_FIRED.labels(reminder.kind).inc()
                lateness = (now - reminder.due_at).total_seconds()
                metrics.REMINDER_LATENESS.observe(max(0.0, lateness))
        return outcomes

    async def _fire_together(self, claimed: Sequence[Reminder]) -> dict[int, FireResult]:
        results: dict[int, FireResult] = {}
        async with self.changes.begin() as change:
            tx, now = change.tx, change.now
            journal.buffer(tx)
            outbox.buffer(tx)
            # Lock order: incidents (in id order), then reminders, as lifecycle changes do.
            locked = await incidents.get_many(
                tx, sorted({r.incident_id for r in claimed if r.incident_id}), lock=True
            )
            current = await reminders.get_many(tx, [r.id for r in claimed])
            live: list[Reminder] = []
            for reminder in claimed:
                again = current.get(reminder.id)
                if (
                    again is None
                    or again.status is not ReminderStatus.FIRING
                    or again.claimed_by != self.owner
                ):
                    results[reminder.id] = FireResult.LOST
                else:
                    live.append(again)
            await self._prepare(change, live, locked)
            closing: list[tuple[int, ReminderStatus, str]] = []
            planned = []
            for reminder in live:
                with logs.bound(incident=reminder.incident_id):
                    firing = await self._handle(change, reminder, locked)
                closing.append((reminder.id, firing.status, firing.outcome))
                fired = firing.status is ReminderStatus.FIRED
                results[reminder.id] = FireResult.FIRED if fired else FireResult.SKIPPED
                if firing.follow_up is not None:
                    plan = reminder.plan if firing.plan is None else firing.plan
                    planned.append((reminder.incident_id or None, plan, firing.follow_up))
            if len(await reminders.finish_many(tx, self.owner, now, closing)) != len(closing):
                raise _ClaimLost()
            for (_, _, follow_up), new_id in zip(
                planned, await reminders.insert_batch(tx, planned, now), strict=True
            ):
                self.scheduler.hold_after_commit(tx, new_id, follow_up.due_at, now)
        return results

    async def _prepare(
        self, change: Change, live: Sequence[Reminder], locked: Mapping[str, Incident]
    ) -> None:
        # A handler that reads its own state for a whole batch at once (escalation) does so.
        batches: dict[int, tuple[PreparesBatch, list[Reminder]]] = {}
        for reminder in live:
            handler: object = self.kinds.get(reminder.kind)
            if isinstance(handler, PreparesBatch):
                batches.setdefault(id(handler), (handler, []))[1].append(reminder)
        for preparing, batch in batches.values():
            await preparing.prepare(change, batch, locked)

    async def _handle(
        self, change: Change, reminder: Reminder, locked: Mapping[str, Incident]
    ) -> Firing:
        incident = locked.get(reminder.incident_id) if reminder.incident_id else None
        if reminder.incident_id and incident is None:
            return Firing(ReminderStatus.SKIPPED, "no incident")
        handler = self.kinds.get(reminder.kind)
        if handler is None:
            # A kind this process does not know (a newer version planned it): say so, once.
            log.warning("reminder %s: no handler for kind %r", reminder.id, reminder.kind)
            return Firing(ReminderStatus.SKIPPED, f"no handler for {reminder.kind}")
        return await handler.fire(change, reminder, incident)

    async def fire_in(
        self, change: Change, reminder: Reminder, incident: Incident | None
    ) -> ReminderStatus:
        """Fire (or skip) a claimed reminder inside `change`, through its kind's handler;
        its incident row (if any) is locked. Closes the reminder and plans its follow-up."""
        locked = {incident.id: incident} if incident is not None else {}
        firing = await self._handle(change, reminder, locked)
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
