"""The service container: every port and service, wired in one place.

Nothing here imports Slack: the notifier is handed in, so the console, the tests and
production build the same services around different notifiers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.audit import AuditLog
from bot.clock import Clock, SystemClock
from bot.coordination import Coordinator, LocalCoordinator
from bot.dedup import (
    DEFAULT_PRUNE_INTERVAL_SECONDS,
    DEFAULT_RETENTION_SECONDS,
    HandledRequestsPruner,
)
from bot.escalation.service import EscalationService
from bot.incidents.flows import IncidentFlows
from bot.incidents.service import IncidentListener, IncidentService
from bot.notify import Notifier
from bot.outbox import OutboxDispatcher
from bot.permissions import CachedDirectory, Directory, Permissions, StaticDirectory
from bot.policy import Policy
from bot.store import Store, migrate


@dataclass
class Services:
    policy: Policy
    store: Store
    coordinator: Coordinator
    clock: Clock
    notifier: Notifier
    audit: AuditLog
    dispatcher: OutboxDispatcher
    incidents: IncidentService
    permissions: Permissions
    escalation: EscalationService
    pruner: HandledRequestsPruner
    listeners: list[IncidentListener] = field(default_factory=list)

    async def start(self, *, run_dispatcher: bool = True, run_scheduler: bool = True) -> None:
        """Open the store, apply migrations, start delivering the outbox and the reminders
        (and, with the reminders, forgetting handled requests past their retention)."""
        await self.store.open()
        await migrate(self.store)
        if run_dispatcher:
            self.dispatcher.start()
        if run_scheduler:
            await self.escalation.start()
            self.pruner.start()

    async def close(self) -> None:
        await self.pruner.stop()
        await self.escalation.stop()
        await self.dispatcher.stop()
        await self.coordinator.close()
        await self.store.close()


def build_services(
    *,
    policy: Policy,
    store: Store,
    notifier: Notifier,
    coordinator: Coordinator | None = None,
    directory: Directory | None = None,
    clock: Clock | None = None,
    outbox_poll_interval: float = 1.0,
    escalation_sweep_interval: float = 5.0,
    dedup_retention: float = DEFAULT_RETENTION_SECONDS,
    dedup_prune_interval: float = DEFAULT_PRUNE_INTERVAL_SECONDS,
) -> Services:
    clock = clock or SystemClock()
    permissions = Permissions(policy, CachedDirectory(directory or StaticDirectory()))
    coordinator = coordinator or LocalCoordinator()
    dispatcher = OutboxDispatcher(store, clock, poll_interval=outbox_poll_interval)
    listeners: list[IncidentListener] = []
    escalation = EscalationService(
        store=store,
        clock=clock,
        policy=policy,
        dispatcher=dispatcher,
        notifier=notifier,
        permissions=permissions,
        listeners=listeners,
        sweep_interval=escalation_sweep_interval,
    )
    escalation.register(dispatcher)
    # Before IncidentService, which copies the list: planning runs in its transactions.
    listeners.append(escalation)
    incidents = IncidentService(
        store=store,
        clock=clock,
        policy=policy,
        dispatcher=dispatcher,
        permissions=permissions,
        listeners=listeners,
        notifier=notifier,
    )
    IncidentFlows(
        store=store, clock=clock, policy=policy, notifier=notifier, permissions=permissions
    ).register(dispatcher)
    return Services(
        policy=policy,
        store=store,
        coordinator=coordinator,
        clock=clock,
        notifier=notifier,
        audit=AuditLog(store, clock),
        dispatcher=dispatcher,
        incidents=incidents,
        permissions=permissions,
        escalation=escalation,
        pruner=HandledRequestsPruner(
            store, clock, retention=dedup_retention, interval=dedup_prune_interval
        ),
        listeners=listeners,
    )
