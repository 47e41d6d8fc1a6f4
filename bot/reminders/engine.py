"""ReminderEngine: the store-backed timer engine of one process, assembled from its parts.

The store is the source of truth; every part reads and writes it in transactions:

- `storage`: the reminders table (insert, cancel, claim, finish), every kind alike;
- `scheduling`: in-memory APScheduler jobs for reminders due soon, and the periodic sweep;
- `firing`: claims a reminder and fires it exactly once, whichever process gets there first,
  through the handler its kind's owner registered (`kinds`).

Its clients plan reminders with `storage.insert` inside their own changes, and register what
firing means: escalation (pages, breaches, update and review reminders), remediation (expiry,
watch) and follow-ups (action items).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.clock import Clock
from bot.incidents.changes import IncidentChanges
from bot.reminders import storage as reminders
from bot.reminders.firing import FireResult, ReminderFiring
from bot.reminders.kinds import Kinds, ReminderKindHandler
from bot.reminders.model import PlannedReminder, ReminderStatus
from bot.reminders.scheduling import ReminderScheduler
from bot.store import Store, Tx


class ReminderEngine:
    """Durable timers for every client; one per process, all processes sharing a store."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        changes: IncidentChanges,
        sweep_interval: float = 5.0,
        lookahead: float | None = None,
        claim_seconds: float = 30.0,
        batch_size: int = 100,
        max_concurrent_fires: int = 100,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.kinds = Kinds()
        self.scheduling = ReminderScheduler(
            store=store,
            clock=clock,
            sweep_interval=sweep_interval,
            lookahead=lookahead,
            max_concurrent_fires=max_concurrent_fires,
        )
        self.firing = ReminderFiring(
            store=store,
            clock=clock,
            changes=changes,
            scheduler=self.scheduling,
            kinds=self.kinds,
            owner=owner,
            claim_seconds=claim_seconds,
            batch_size=batch_size,
        )

    def register(self, kinds: Iterable[str], handler: ReminderKindHandler) -> None:
        """Let `handler` fire the reminders of `kinds` (bot.reminders.kinds has the contract)."""
        self.kinds.register(kinds, handler)

    @property
    def owner(self) -> str:
        """This process, as the owner of the reminders it claims."""
        return self.firing.owner

    @property
    def claim_seconds(self) -> float:
        """How long a claim holds before another process may take it over."""
        return self.firing.claim_seconds

    @property
    def scheduler(self) -> AsyncIOScheduler | None:
        """The running in-memory scheduler (None when stopped): for diagnostics and bench."""
        return self.scheduling.scheduler

    def hold_after_commit(self, tx: Tx, reminder_id: int, due_at: datetime, now: datetime) -> None:
        """Hand a reminder `tx` just planned to the scheduler once `tx` commits, if due soon."""
        self.scheduling.hold_after_commit(tx, reminder_id, due_at, now)

    async def insert_firing(
        self,
        tx: Tx,
        incident_id: str | None,
        plan: int,
        planned: PlannedReminder,
        now: datetime,
        *,
        reason: str = "",
        actor: str | None = None,
    ) -> int:
        """Insert a reminder already claimed by this process, to be fired in `tx` itself: it
        commits fired with the change, or not at all."""
        return await reminders.insert(
            tx,
            incident_id,
            plan,
            planned,
            now,
            status=ReminderStatus.FIRING,
            claimed_by=self.owner,
            claimed_until=now.timestamp() + self.claim_seconds,
            reason=reason,
            actor=actor,
        )

    async def start(self) -> None:
        """Start the scheduler: an immediate sweep fires what came due while nobody ran."""
        await self.scheduling.start(self.firing)

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop triggering; let firings already under way finish (up to `timeout`)."""
        await self.scheduling.stop(timeout)

    async def overdue_seconds(self) -> float:
        """How late the most overdue unfired reminder is now (0 when none is): what
        `chatops_reminders_overdue_seconds` reports at each scrape."""
        async with self.store.transaction() as tx:
            return await reminders.overdue_seconds(tx, self.clock.now())

    async def fire(self, reminder_id: int) -> FireResult:
        """Claim one reminder and fire it if it is due and still wanted."""
        return await self.firing.fire(reminder_id)

    async def fire_due(self) -> int:
        """Fire every reminder that is due now; return how many fired (tests, the sweep)."""
        return await self.firing.fire_due()

    async def sweep(self) -> int:
        """Fire what is overdue and schedule what comes due within the lookahead."""
        return await self.scheduling.sweep(self.firing)
