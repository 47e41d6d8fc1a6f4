"""Side effects of incident changes, delivered from the outbox after commit.

Each handler reads the incident as it is now (not as it was when queued), so a delayed
delivery never shows stale state.
"""

from __future__ import annotations

import logging

from bot import audit
from bot.audit import AuditRecord
from bot.clock import Clock
from bot.errors import NotifierError
from bot.incidents import storage
from bot.incidents.service import ANNOUNCE
from bot.models import SYSTEM, Incident, TimelineEvent
from bot.notify import Notifier
from bot.outbox import Effect, OutboxDispatcher
from bot.policy import Policy
from bot.store import Store

log = logging.getLogger(__name__)


class IncidentFlows:
    """Registers and runs the incident effect handlers."""

    def __init__(self, *, store: Store, clock: Clock, policy: Policy, notifier: Notifier) -> None:
        self.store = store
        self.clock = clock
        self.policy = policy
        self.notifier = notifier

    def register(self, dispatcher: OutboxDispatcher) -> None:
        dispatcher.register(ANNOUNCE, self.announce, on_failure=self.announce_failed)

    async def _incident(self, effect: Effect) -> Incident | None:
        async with self.store.transaction() as tx:
            return await storage.get(tx, effect.incident_id or "")

    async def announce(self, effect: Effect) -> None:
        incident = await self._incident(effect)
        if incident is None:
            return
        ref = await self.notifier.announce_incident(incident, channel=self.policy.announce_channel)
        async with self.store.transaction() as tx:
            await tx.execute(
                "UPDATE incidents SET announce_ts = ? WHERE id = ?", (ref.ts, incident.id)
            )

    async def announce_failed(self, effect: Effect, error: NotifierError) -> None:
        incident = await self._incident(effect)
        if incident is None:
            return
        now = self.clock.now()
        target = self.policy.announce_channel
        async with self.store.transaction() as tx:
            await storage.add_timeline(
                tx,
                TimelineEvent(
                    incident_id=incident.id,
                    at=now,
                    actor=SYSTEM.user_id,
                    kind="notification_failed",
                    text=f"Announcement in <#{target}> failed: {error.error_code or error}",
                ),
            )
            await audit.append(
                tx,
                now,
                AuditRecord(
                    actor=SYSTEM.user_id,
                    action="incident.announce",
                    target=incident.id,
                    outcome=f"failed: {error.error_code or error}",
                    args={"channel": target},
                    incident_id=incident.id,
                ),
            )
        try:
            await self.notifier.report_failure(
                incident,
                user_id=incident.declared_by,
                step="announce",
                target=target,
                error=error.error_code or str(error),
            )
        except NotifierError:
            log.exception("could not tell %s that the announcement failed", incident.declared_by)
