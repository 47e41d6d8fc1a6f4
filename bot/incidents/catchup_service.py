"""CatchupService: gathers an incident's catch-up facts from the store (bot.incidents.catchup
builds the catch-up from them), and gives it once to each person who joins its war room late.

A latecomer is someone who joins after the incident's first status update (or resolution,
or reopening), or more than `FRESH_FOR` after its declaration: those invited as the war room
opens join within seconds of a declaration they saw, and a catch-up of it would only repeat
it. The time counts from the declaration, not the room's opening: a room opened late (a
severity raised an hour on) is joined by people who missed that hour. Nothing is claimed for
someone who is not late, so they still get one if they leave and come back as a latecomer.

Firing alerts come through the `FiringAlerts` seam: bot.alerts records the alerts it routes
to an incident and answers `firing_for`; without an alert source the catch-up says none are
recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from bot import audit
from bot.audit import AuditRecord
from bot.clock import Clock, utc_from_timestamp
from bot.errors import NotFound
from bot.incidents import storage
from bot.incidents.catchup import (
    UPDATE_KINDS,
    Catchup,
    FiringAlert,
    OpenItem,
    RemediationTried,
    build_catchup,
)
from bot.incidents.queries import well_formed_id
from bot.models import Incident
from bot.store import Store, Tx

# How many rows of each kind are read: more than the catch-up shows, so it can say how many.
_READ_MAX = 50
# Who joins within this long of the declaration, before any update, saw the declaration
# itself (invited as the war room opened): no catch-up for them.
FRESH_FOR = timedelta(minutes=2)


class FiringAlerts(Protocol):
    """The alerts firing now for an incident, read inside the caller's transaction."""

    async def firing_for(self, tx: Tx, incident: Incident) -> Sequence[FiringAlert]: ...


class NoAlertSource:
    """No alert source is wired: no alert is known to be firing."""

    async def firing_for(self, tx: Tx, incident: Incident) -> Sequence[FiringAlert]:
        return ()


@dataclass(frozen=True, slots=True)
class Joined:
    """A catch-up owed to someone who joined a war room (given once)."""

    user_id: str
    channel_id: str
    catchup: Catchup


class CatchupService:
    """`/incident catchup [ID]`, and the catch-up given on joining a war room."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        alerts: FiringAlerts | None = None,
        fresh_for: timedelta = FRESH_FOR,
    ) -> None:
        self.store = store
        self.clock = clock
        self.alerts = alerts or NoAlertSource()
        self.fresh_for = fresh_for

    async def catchup(self, incident_id: str) -> Catchup:
        """Where the incident stands now; NotFound for an unknown ID."""
        incident_id = well_formed_id(incident_id)
        async with self.store.transaction() as tx:
            incident = await storage.get(tx, incident_id)
            if incident is None:
                raise NotFound(f"There is no incident {incident_id}.")
            return await self._gather(tx, incident)

    async def for_joiner(self, channel_id: str, user_id: str) -> Joined | None:
        """The catch-up for `user_id`, who has just joined `channel_id`, the first time they
        join that incident's war room late (see the module docstring); None when the channel
        is no war room, when the person declared the incident (they know it), when they join
        with the room (they saw the declaration), or when they had it already. The claim is
        durable: a redelivered event or a second join gives nothing."""
        async with self.store.transaction() as tx:
            incident = await storage.get_by_channel(tx, channel_id)
            if incident is None or incident.declared_by == user_id:
                return None
            now = self.clock.now()
            if not await self._late(tx, incident, now):
                return None
            claimed = await tx.execute(
                "INSERT INTO catchup_sent (incident_id, user_id, sent_at) VALUES (?, ?, ?)"
                " ON CONFLICT (incident_id, user_id) DO NOTHING",
                (incident.id, user_id, now.timestamp()),
            )
            if claimed != 1:
                return None
            await audit.append(
                tx,
                now,
                AuditRecord(
                    actor=user_id,
                    action="incident.catchup",
                    target=incident.id,
                    outcome="ok: on joining the war room",
                    args={"channel": channel_id},
                    incident_id=incident.id,
                ),
            )
            return Joined(user_id, channel_id, await self._gather(tx, incident))

    async def _late(self, tx: Tx, incident: Incident, now: datetime) -> bool:
        """Whether someone joining now comes late: after the first update, or more than
        `fresh_for` after the declaration."""
        if now - incident.declared_at > self.fresh_for:
            return True
        return bool(await storage.timeline_tail(tx, incident.id, limit=1, kinds=UPDATE_KINDS))

    async def _gather(self, tx: Tx, incident: Incident) -> Catchup:
        updates = await storage.timeline_tail(tx, incident.id, limit=1, kinds=UPDATE_KINDS)
        diagnoses = await storage.timeline_tail(tx, incident.id, limit=1, kinds=("diagnosed",))
        tail = await storage.timeline_tail(tx, incident.id, limit=3)
        return build_catchup(
            incident,
            now=self.clock.now(),
            updates=updates,
            remediations=await _remediations(tx, incident.id),
            diagnoses=diagnoses,
            items=await _open_items(tx, incident.id),
            alerts=await self.alerts.firing_for(tx, incident),
            tail=tail,
        )


async def _remediations(tx: Tx, incident_id: str) -> list[RemediationTried]:
    rows = await tx.fetchall(
        "SELECT id, action, service, status, outcome, updated_at FROM remediation_requests"
        f" WHERE incident_id = ? ORDER BY updated_at DESC, id DESC LIMIT {_READ_MAX}",
        (incident_id,),
    )
    return [
        RemediationTried(
            id=int(row["id"]),
            action=row["action"],
            service=row["service"],
            status=row["status"],
            outcome=row["outcome"],
            at=utc_from_timestamp(row["updated_at"]),
        )
        for row in rows
    ]


async def _open_items(tx: Tx, incident_id: str) -> list[OpenItem]:
    rows = await tx.fetchall(
        "SELECT text, owner, due_at FROM action_items WHERE incident_id = ?"
        f" AND closed_at IS NULL ORDER BY due_at, id LIMIT {_READ_MAX}",
        (incident_id,),
    )
    return [
        OpenItem(text=row["text"], owner=row["owner"], due_at=utc_from_timestamp(row["due_at"]))
        for row in rows
    ]
