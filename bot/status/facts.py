"""The status document from the store's public facts: one read, then a pure function."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from bot.policy.status_page import StatusComponent
from bot.status import storage
from bot.status.models import (
    STATE_OF_SEVERITY,
    ComponentState,
    PublicComponent,
    PublicIncident,
    PublicUpdate,
    StatusDocument,
    worst,
)
from bot.status.text import public_text
from bot.store import Tx

RESOLVED_WINDOW_DAYS = 90
TITLE = "Service status"


async def read_document(
    tx: Tx, components: Sequence[StatusComponent], now: datetime
) -> StatusDocument:
    """Everything the page shows, read in `tx` as of `now`."""
    since = now - timedelta(days=RESOLVED_WINDOW_DAYS)
    published = await storage.public_incidents(tx, resolved_since=since)
    ids = [p.incident.id for p in published]
    updates = await storage.public_updates(tx, ids)
    impacts = await storage.public_impacts(tx, ids)
    return build_document(components, published, updates, impacts)


def build_document(
    components: Sequence[StatusComponent],
    published: Sequence[storage.PublishedIncident],
    updates: Sequence[storage.PublishedUpdate],
    impacts: Mapping[str, str] | None = None,
) -> StatusDocument:
    """The page from its facts (see bot.status.models for how states are derived).
    `impacts`: the impact each incident shows (storage.public_impacts); an incident left
    out shows its own."""
    impacts = impacts or {}
    updates_of: dict[str, list[PublicUpdate]] = defaultdict(list)
    for update in updates:
        updates_of[update.incident_id].append(
            PublicUpdate(at=update.at, status=update.status, text=public_text(update.said))
        )
    incidents = [
        _incident(
            p,
            components,
            updates_of[p.incident.id],
            impacts.get(p.incident.id, p.incident.impact),
        )
        for p in published
    ]
    open_incidents = [incident for incident in incidents if incident.status.is_open]
    shown = []
    for component in components:
        states = [
            incident.state for incident in open_incidents if component.name in incident.components
        ]
        shown.append(PublicComponent(name=component.name, state=worst(states)))
    return StatusDocument(
        title=TITLE,
        # An open incident that names no listed component still counts for the whole.
        state=worst([incident.state for incident in open_incidents]),
        components=shown,
        open_incidents=open_incidents,
        resolved_incidents=[incident for incident in incidents if not incident.status.is_open],
        resolved_window_days=RESOLVED_WINDOW_DAYS,
        updated_at=max((incident.updated_at for incident in incidents), default=None),
    )


def _incident(
    published: storage.PublishedIncident,
    components: Sequence[StatusComponent],
    updates: list[PublicUpdate],
    impact: str,
) -> PublicIncident:
    incident = published.incident
    affected = set(incident.services)
    resolved_at = incident.resolved_at if not incident.is_open else None
    # Public facts only: publishing, published updates, the resolution time.
    moments = [published.public_at, *(update.at for update in updates)]
    if published.withdrawn_at is not None:  # an update taken back: readers must refetch
        moments.append(published.withdrawn_at)
    if published.update_published_at is not None:  # one put back shows again: the same
        moments.append(published.update_published_at)
    if resolved_at is not None:
        moments.append(resolved_at)
    elif published.reopened_at is not None:  # shown open again since then
        moments.append(published.reopened_at)
    return PublicIncident(
        id=incident.id,
        title=public_text(incident.title),
        impact=public_text(impact),
        status=incident.status,
        state=STATE_OF_SEVERITY[incident.severity]
        if incident.is_open
        else ComponentState.OPERATIONAL,
        components=[c.name for c in components if c.covers & affected],
        started_at=incident.declared_at,
        resolved_at=resolved_at,
        updated_at=max(moments),
        updates=updates,
    )
