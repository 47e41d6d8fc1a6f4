"""IncidentService: declaring incidents (the lifecycle grows here).

Plain async Python: no Slack imports. Every change and its audit entry share one store
transaction; notifications go through the outbox after the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot import audit, dedup, outbox
from bot.audit import AuditRecord
from bot.clock import Clock
from bot.errors import DuplicateRequest, NotFound, PermissionDenied
from bot.incidents import storage
from bot.incidents.schemas import DeclareIncident
from bot.models import Actor, Incident, Status, TimelineEvent
from bot.outbox import OutboxDispatcher
from bot.policy import Policy
from bot.store import Store, Tx

ANNOUNCE = "incident.announce"


@dataclass(frozen=True, slots=True)
class IncidentChange:
    """What happened to an incident, handed to listeners inside the same transaction."""

    kind: str
    before: Incident | None
    after: Incident
    actor: Actor
    at: datetime


class IncidentListener(Protocol):
    """Reacts to changes in the changing transaction (the escalation planner is one)."""

    async def incident_changed(self, tx: Tx, change: IncidentChange) -> None: ...


def incident_id(day: str, seq: int) -> str:
    return f"INC-{day}-{seq:03d}"


class IncidentService:
    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        policy: Policy,
        dispatcher: OutboxDispatcher,
        listeners: Sequence[IncidentListener] = (),
    ) -> None:
        self.store = store
        self.clock = clock
        self.policy = policy
        self.dispatcher = dispatcher
        self.listeners = list(listeners)

    def _may(self, actor: Actor, allowed: list[str]) -> bool:
        # User-group membership is resolved by the caller's middleware; here only user IDs.
        return not allowed or actor.user_id in allowed

    async def declare(
        self, command: DeclareIncident, actor: Actor, *, request_id: str | None = None
    ) -> Incident:
        """Create an incident, audit it and queue its announcement, all in one transaction.

        Raises DuplicateRequest when `request_id` was already handled (a Slack retry),
        PermissionDenied when the actor may not declare.
        """
        if not self._may(actor, self.policy.roles.declarers):
            raise PermissionDenied("You are not allowed to declare incidents.")
        now = self.clock.now()
        day = now.astimezone(self.policy.calendar.zone).strftime("%Y%m%d")
        targets = self.policy.targets(command.severity)
        async with self.store.transaction() as tx:
            if not await dedup.mark_handled(tx, request_id, now):
                raise DuplicateRequest("This request was already handled.")
            seq = await storage.next_sequence(tx, day)
            incident = Incident(
                id=incident_id(day, seq),
                title=command.title,
                severity=command.severity,
                status=Status.INVESTIGATING,
                impact=command.impact,
                services=command.services,
                declared_by=actor.user_id,
                declared_at=now,
                updated_at=now,
                roles={"commander": actor.user_id},
                next_update_due=(
                    now + targets.update_every.as_timedelta()
                    if targets.update_every and not targets.update_every.is_zero
                    else None
                ),
            )
            await storage.insert(tx, incident, day=day, seq=seq)
            await storage.add_timeline(
                tx,
                TimelineEvent(
                    incident_id=incident.id,
                    at=now,
                    actor=actor.user_id,
                    kind="declared",
                    text=f"Declared {incident.severity} by <@{actor.user_id}>: {incident.title}",
                ),
            )
            await audit.append(
                tx,
                now,
                AuditRecord(
                    actor=actor.user_id,
                    action="incident.declare",
                    target=incident.id,
                    outcome="ok",
                    args=command.model_dump(mode="json"),
                    incident_id=incident.id,
                    request_id=request_id,
                ),
            )
            await outbox.enqueue(tx, now, ANNOUNCE, {}, incident_id=incident.id)
            change = IncidentChange("declared", None, incident, actor, now)
            for listener in self.listeners:
                await listener.incident_changed(tx, change)
        self.dispatcher.kick()
        return incident

    async def get(self, incident_id: str) -> Incident:
        """The incident with this ID; NotFound with a clear message otherwise."""
        async with self.store.transaction() as tx:
            incident = await storage.get(tx, incident_id.upper())
        if incident is None:
            raise NotFound(f"There is no incident {incident_id}.")
        return incident

    async def list(self, *, open_only: bool = True) -> list[Incident]:
        async with self.store.transaction() as tx:
            return await storage.list_incidents(tx, open_only=open_only)

    async def timeline(self, incident_id: str) -> list[TimelineEvent]:
        async with self.store.transaction() as tx:
            return await storage.timeline(tx, incident_id)
