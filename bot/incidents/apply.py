"""One lifecycle change of an incident, applied the same way whatever the change: lock the
row, apply the change's rule, write the incident, journal the timeline line and the audit
entry, queue what Slack must hear (`bot.incidents.effects`), tell the listeners. All in one
transaction (`bot.incidents.changes`); the rules themselves are in IncidentService.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from bot import refs
from bot.errors import Conflict
from bot.incidents import storage
from bot.incidents.changes import Change, IncidentChange, IncidentChanges
from bot.incidents.effects import effects_for, queued
from bot.incidents.queries import well_formed_id
from bot.models import Actor, Incident
from bot.policy import Policy


async def apply_change(
    changes: IncidentChanges,
    policy: Policy,
    incident_id: str,
    actor: Actor,
    *,
    action: str,
    args: dict[str, Any],
    kind: str,
    mutate: Callable[[Incident], Incident],
    timeline: Callable[[Incident, Incident], str | refs.Rich],
    request_id: str | None,
    effects: Sequence[str] | None = None,
    details: dict[str, Any] | None = None,
    source: str | None = None,
    said: str = "",
    within: Change | None = None,
) -> Incident:
    """Lock the incident, apply `mutate`, and record everything in one transaction.

    `mutate` holds the rule of the change (IncidentService); this is the same for all of them.

    `mutate` raises Conflict to refuse; nothing is written then. `effects` None means the
    usual ones for `kind` (EFFECTS_OF_CHANGE). A `source` already on the timeline raises
    AlreadyOnTimeline: a copied message is recorded once. `said` is the end of the
    timeline text that the person wrote (TimelineEvent.said). `within` is a change already
    open (alerts decide and change an incident in one transaction): it is used, not begun.
    """
    incident_id = well_formed_id(incident_id)
    async with _opened(changes, request_id, within) as change:
        before = await change.lock(incident_id)
        if source is not None and await storage.has_timeline_source(change.tx, before.id, source):
            raise AlreadyOnTimeline(before)
        after = await storage.update(change.tx, mutate(before).evolve(updated_at=change.now))
        written = timeline(before, after)
        parts = refs.legacy(written, said) if isinstance(written, str) else written
        if effects is None:
            effects = effects_for(kind, after, policy)
        payload: dict[str, Any] = {
            "kind": kind,
            "text": refs.plain(parts),
            "parts": refs.dump(parts),
            "said": said,
            "actor": actor.user_id,
            "details": details or {},
        }
        await change.record(
            after.id,
            actor=actor.user_id,
            kind=kind,
            text=parts,
            action=action,
            args=args,
            effects=queued(effects, payload, after),
            data=details,
            source=source,
            said=said,
        )
        await change.announce(IncidentChange(kind, before, after, actor, change.now, details or {}))
    return after


@asynccontextmanager
async def _opened(
    changes: IncidentChanges, request_id: str | None, within: Change | None
) -> AsyncIterator[Change]:
    if within is not None:
        yield within
        return
    async with changes.begin(request_id=request_id) as change:
        yield change


class AlreadyOnTimeline(Conflict):
    def __init__(self, incident: Incident) -> None:
        super().__init__(f"That message is already on the timeline of {incident.id}.")
        self.incident = incident
