"""The one path by which an incident changes, and how the rest of the bot hears of it.

A change runs in one store transaction, in this order:

1. de-duplicate: the Slack request ID is claimed, so a retry raises DuplicateRequest;
2. lock: the incident row is read FOR UPDATE (NotFound for an unknown ID);
3. the caller's own work (insert or update the incident, write a reminder...);
4. journal: the timeline line and the audit entry (`bot.incidents.journal`);
5. enqueue: the outbox effects that will tell Slack;
6. listeners: told inside the transaction, so what they write commits with the change or not
   at all (the escalation planner is one);
7. kick: the outbox dispatcher is woken by `tx.after_commit`, never before the commit.

Anything else that must wait for the commit (a reminder handed to the in-memory scheduler)
goes through `tx.after_commit` too: a job or a delivery that ran first would find no row, or
one that a rollback then removes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bot import dedup, outbox, refs
from bot.clock import Clock
from bot.errors import NotFound
from bot.incidents import journal, storage
from bot.models import Actor, Incident
from bot.outbox import OutboxDispatcher
from bot.store import Store, Tx


@dataclass(frozen=True, slots=True)
class IncidentChange:
    """What happened to an incident, handed to listeners inside the same transaction.

    `kind` is one of: declared, acknowledged, status_changed, updated, severity_changed,
    assigned, noted, resolved, reopened, escalated, message_added, war_room_requested,
    published (bot.status.service).
    """

    kind: str
    before: Incident | None
    after: Incident
    actor: Actor
    at: datetime
    details: dict[str, Any] = field(default_factory=dict)


class IncidentListener(Protocol):
    """Reacts to a change inside the changing transaction (the escalation planner is one).

    Raising rolls the whole change back. Work that must not happen before the commit (a job
    for the scheduler, a kick) is handed to `tx.after_commit`.
    """

    async def incident_changed(self, tx: Tx, change: IncidentChange) -> None: ...


@dataclass(frozen=True, slots=True)
class Queued:
    """An outbox effect to queue with a change: its kind and JSON payload, and `lane` when it
    keeps its order in a lane of its own within the incident's (`<incident>/<lane>`): it then
    waits for nothing else of the incident, and nothing of the incident waits for it."""

    kind: str
    payload: dict[str, Any] = field(default_factory=dict)
    lane: str = ""


class IncidentChanges:
    """Opens changes: one per process, shared by every service that changes incidents."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        dispatcher: OutboxDispatcher,
        listeners: list[IncidentListener] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.dispatcher = dispatcher
        # Kept, not copied: the wiring adds listeners after the services are built.
        self.listeners: list[IncidentListener] = listeners if listeners is not None else []

    @asynccontextmanager
    async def begin(self, *, request_id: str | None = None) -> AsyncIterator[Change]:
        """A transaction that has claimed `request_id`; DuplicateRequest for a Slack retry."""
        now = self.clock.now()
        async with self.store.transaction() as tx:
            await dedup.claim(tx, request_id, now)
            yield Change(self, tx, now, request_id)

    def joining(self, tx: Tx, now: datetime) -> Change:
        """The same steps in a transaction opened elsewhere (a listener, a firing)."""
        return Change(self, tx, now, None)


class Change:
    """One change in progress: lock, record, announce. Its kick waits for the commit."""

    def __init__(
        self, changes: IncidentChanges, tx: Tx, now: datetime, request_id: str | None
    ) -> None:
        self._changes = changes
        self.tx = tx
        self.now = now
        self.request_id = request_id
        self._kick_registered = False

    async def lock(self, incident_id: str) -> Incident:
        """The incident, locked until the commit; NotFound with a clear message otherwise."""
        incident = await storage.get(self.tx, incident_id.upper(), lock=True)
        if incident is None:
            raise NotFound(f"There is no incident {incident_id}.")
        return incident

    async def record(
        self,
        incident_id: str,
        *,
        actor: str,
        kind: str,
        text: str | refs.Rich,
        action: str,
        args: dict[str, Any],
        effects: Sequence[Queued] = (),
        data: dict[str, Any] | None = None,
        source: str | None = None,
        outcome: str = "ok",
        said: str = "",
    ) -> None:
        """Journal the action (timeline line + audit entry) and queue its effects.

        `said` is the end of `text` that a person wrote (TimelineEvent.said)."""
        await journal.record(
            self.tx,
            self.now,
            incident_id,
            actor=actor,
            kind=kind,
            text=text,
            action=action,
            args=args,
            outcome=outcome,
            data=data,
            source=source,
            request_id=self.request_id,
            said=said,
        )
        await self.enqueue(incident_id, effects)

    async def enqueue(self, lane: str, effects: Sequence[Queued]) -> None:
        """Queue outbox effects in `lane` (the incident's id, or a lane of its own, see
        bot.outbox), or in the effect's own lane within it; the dispatcher is kicked once the
        transaction commits."""
        for effect in effects:
            within = f"{lane}/{effect.lane}" if effect.lane else lane
            await outbox.enqueue(self.tx, self.now, effect.kind, effect.payload, lane=within)
        if effects and not self._kick_registered:
            self._kick_registered = True
            self.tx.after_commit(self._changes.dispatcher.kick)

    async def announce(self, change: IncidentChange) -> None:
        """Tell every listener, inside this transaction."""
        for listener in list(self._changes.listeners):
            await listener.incident_changed(self.tx, change)
