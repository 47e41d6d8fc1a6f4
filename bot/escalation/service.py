"""EscalationService: the escalation engine of one process, assembled from its parts.

The store is the source of truth; every part reads and writes it in transactions:

- `planning`: the IncidentListener that cancels and plans reminders in the changing
  transaction (`planner.py` decides which);
- `scheduling`: in-memory APScheduler jobs for reminders due soon, and the periodic sweep;
- `firing`: claims a reminder and fires it exactly once, whichever process gets there first;
- `manual`: `/incident escalate` pages the next level now;
- `delivery`: the outbox handlers that post the pages, warnings and reminders to Slack;
- `oncall`: who stands at each level.
"""

from __future__ import annotations

from collections.abc import Sequence

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.clock import Clock
from bot.escalation import storage as reminders
from bot.escalation.delivery import EscalationDelivery
from bot.escalation.extensions import OnCallSource, ProviderPages, ReminderHandler
from bot.escalation.firing import FireResult, ReminderFiring, SubjectHandler
from bot.escalation.manual import Escalation, ManualEscalation
from bot.escalation.oncall import OnCall, oncall
from bot.escalation.planner import EscalationState, Reminder, ReminderKind, ReminderStatus
from bot.escalation.planning import ReminderPlanning
from bot.escalation.scheduling import ReminderScheduler
from bot.incidents.changes import IncidentChanges
from bot.models import Actor, Severity
from bot.notify import Notifier
from bot.outbox import OutboxDispatcher
from bot.permissions import Permissions
from bot.policy import Policy
from bot.store import Store


class EscalationService:
    """Escalation and reminders for every incident; one per process, all sharing a store.

    `planning` is the listener to add to the incident changes (bot/services.py does).
    """

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        policy: Policy,
        dispatcher: OutboxDispatcher,
        notifier: Notifier,
        permissions: Permissions,
        changes: IncidentChanges | None = None,
        sweep_interval: float = 5.0,
        lookahead: float | None = None,
        claim_seconds: float = 30.0,
        batch_size: int = 100,
        max_concurrent_fires: int = 8,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.policy = policy
        # A process of its own (tests, benchmarks) gets changes that tell no listeners.
        changes = changes or IncidentChanges(store=store, clock=clock, dispatcher=dispatcher)
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
            policy=policy,
            changes=changes,
            scheduler=self.scheduling,
            owner=owner,
            claim_seconds=claim_seconds,
            batch_size=batch_size,
        )
        self.planning = ReminderPlanning(
            policy=policy, changes=changes, firing=self.firing, scheduler=self.scheduling
        )
        self.manual = ManualEscalation(
            policy=policy, permissions=permissions, changes=changes, firing=self.firing
        )
        self.delivery = EscalationDelivery(
            store=store,
            policy=policy,
            notifier=notifier,
            permissions=permissions,
            changes=changes,
        )

    def add_reminder_kind(self, kind: ReminderKind, handler: ReminderHandler) -> None:
        """Let another service own a reminder kind (bot.escalation.extensions)."""
        self.firing.handlers[kind] = handler

    def add_provider_pages(self, pages: ProviderPages, oncall: OnCallSource | None) -> None:
        """Let levels page the paging services, and the first level reach who is on call."""
        self.firing.provider_pages = pages
        self.delivery.oncall = oncall

    def register_subject_kind(self, kind: ReminderKind, handler: SubjectHandler) -> None:
        """Fire reminders of `kind` (about a subject, not an incident) through `handler`."""
        self.firing.subject_handlers[kind] = handler

    @property
    def owner(self) -> str:
        """This process, as the owner of the reminders it claims."""
        return self.firing.owner

    @property
    def scheduler(self) -> AsyncIOScheduler | None:
        """The running in-memory scheduler (None when stopped): for diagnostics and bench."""
        return self.scheduling.scheduler

    def register(self, dispatcher: OutboxDispatcher) -> None:
        """Say how the escalation effects are delivered."""
        self.delivery.register(dispatcher)

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
            return await reminders.overdue_seconds(tx, self.firing.clock.now())

    async def fire(self, reminder_id: int) -> FireResult:
        """Claim one reminder and fire it if it is due and still wanted."""
        return await self.firing.fire(reminder_id)

    async def fire_due(self) -> int:
        """Fire every reminder that is due now; return how many fired (tests, the sweep)."""
        return await self.firing.fire_due()

    async def sweep(self) -> int:
        """Fire what is overdue and schedule what comes due within the lookahead."""
        return await self.scheduling.sweep(self.firing)

    async def escalate(
        self,
        incident_id: str,
        actor: Actor,
        reason: str = "",
        request_id: str | None = None,
    ) -> Escalation:
        """Page the next escalation level now (see ManualEscalation.escalate)."""
        return await self.manual.escalate(incident_id, actor, reason, request_id)

    def oncall(self, severity: Severity | None = None) -> list[OnCall]:
        """Who stands at each escalation level, per severity (all severities by default)."""
        return oncall(self.policy, severity)

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
