"""EscalationService: the severity matrix's pages, breaches and reminders, as a client of the
reminder engine (bot.reminders), assembled from its parts:

- `planning`: the IncidentListener that cancels and plans reminders in the changing
  transaction (`planner.py` decides which);
- `firing`: what firing a page, a breach warning or an update/review reminder means (the
  handler of escalation's kinds; the engine claims and fires each exactly once);
- `manual`: `/incident escalate` pages the next level now;
- `delivery`: the outbox handlers that post the pages, warnings and reminders to Slack;
- `oncall`: who stands at each level.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.escalation import storage as escalations
from bot.escalation.delivery import EscalationDelivery
from bot.escalation.extensions import OnCallSource, ProviderPages
from bot.escalation.firing import EscalationFiring
from bot.escalation.manual import Escalation, ManualEscalation
from bot.escalation.oncall import OnCall, oncall
from bot.escalation.planner import EscalationState, ReminderKind
from bot.escalation.planning import ReminderPlanning
from bot.incidents.changes import IncidentChanges
from bot.models import Actor, Severity
from bot.notify import Notifier
from bot.outbox import OutboxDispatcher
from bot.permissions import Permissions
from bot.policy import Policy
from bot.reminders import storage as reminders
from bot.reminders.engine import ReminderEngine
from bot.reminders.model import Reminder, ReminderStatus
from bot.store import Store


class EscalationService:
    """Escalation and reminders for every incident; one per process, all sharing a store.

    `planning` is the listener to add to the incident changes (bot/services.py does); the
    engine fires escalation's kinds through `firing` (registered here).
    """

    def __init__(
        self,
        *,
        store: Store,
        policy: Policy,
        notifier: Notifier,
        permissions: Permissions,
        changes: IncidentChanges,
        engine: ReminderEngine,
    ) -> None:
        self.store = store
        self.policy = policy
        self.engine = engine
        self.firing = EscalationFiring(policy)
        engine.register(ReminderKind, self.firing)
        self.planning = ReminderPlanning(
            policy=policy, changes=changes, engine=engine, states=self.firing
        )
        self.manual = ManualEscalation(
            policy=policy,
            permissions=permissions,
            changes=changes,
            engine=engine,
            firing=self.firing,
        )
        self.delivery = EscalationDelivery(
            store=store,
            policy=policy,
            notifier=notifier,
            permissions=permissions,
            changes=changes,
        )
        self.delivery.unreached.page_after = self.manual.page_after_unreached

    def add_provider_pages(self, pages: ProviderPages, oncall: OnCallSource | None) -> None:
        """Let levels page the paging services, and the first level reach who is on call."""
        self.firing.provider_pages = pages
        self.delivery.oncall = oncall

    def register(self, dispatcher: OutboxDispatcher) -> None:
        """Say how the escalation effects are delivered."""
        self.delivery.register(dispatcher)

    async def escalate(
        self,
        incident_id: str,
        actor: Actor,
        reason: str = "",
        request_id: str | None = None,
        *,
        seen_level: int | None = None,
        seen_severity: Severity | None = None,
    ) -> Escalation:
        """Page the next escalation level now; with `seen_level` and `seen_severity`, only
        if the escalation still stands there (see ManualEscalation.escalate)."""
        return await self.manual.escalate(
            incident_id,
            actor,
            reason,
            request_id,
            seen_level=seen_level,
            seen_severity=seen_severity,
        )

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
            return await escalations.get_state(tx, incident_id.upper())
