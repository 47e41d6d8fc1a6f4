"""Reading incidents: one by ID, the war room's own, pages of the list, the timeline.

Read-only: nothing here changes an incident (that is `bot.incidents.service`).
"""

from __future__ import annotations

import builtins
import re

from bot.errors import NotFound, UsageError
from bot.incidents import storage
from bot.incidents.schemas import INCIDENT_ID, LIST_PAGE_SIZE
from bot.models import Incident, IncidentPage, TimelineEvent
from bot.store import Store

_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")


def well_formed_id(incident_id: str) -> str:
    """`incident_id` upper-cased; NotFound (without repeating it) when it cannot be one: a
    button's value or a form's metadata is checked before it reaches the database."""
    upper = incident_id.upper()
    if not INCIDENT_ID.match(upper):
        raise NotFound("There is no such incident; IDs look like INC-20261127-001.")
    return upper


class IncidentQueries:
    """The read side of IncidentService."""

    def __init__(self, *, store: Store) -> None:
        self.store = store

    async def get(self, incident_id: str) -> Incident:
        """The incident with this ID; NotFound with a clear message otherwise."""
        incident_id = well_formed_id(incident_id)
        async with self.store.transaction() as tx:
            incident = await storage.get(tx, incident_id)
        if incident is None:
            raise NotFound(f"There is no incident {incident_id}.")
        return incident

    async def locate(self, incident_id: str | None, *, channel_id: str | None) -> str:
        """The incident a command is about: the ID given, or the war room's own incident.

        UsageError (a "wrong place" answer) when no ID was given outside a war room.
        """
        if incident_id:
            if not INCIDENT_ID.match(incident_id.upper()):
                # Said without quoting it: whatever came in is not shown back.
                raise UsageError("That is not an incident ID; they look like INC-20261127-001.")
            return incident_id.upper()
        if channel_id and _CHANNEL_ID.match(channel_id):
            async with self.store.transaction() as tx:
                incident = await storage.get_by_channel(tx, channel_id)
            if incident is not None:
                return incident.id
        raise UsageError(
            "This channel is not an incident channel, so give the incident ID "
            "(`/incident list` shows them)."
        )

    async def list(self, *, open_only: bool = True) -> builtins.list[Incident]:
        async with self.store.transaction() as tx:
            return await storage.list_incidents(tx, open_only=open_only)

    async def open_and_newest(self) -> builtins.list[Incident]:
        """Every open incident, however many, and the newest 50 of all (open or resolved):
        what an incident ID may be completed from."""
        async with self.store.transaction() as tx:
            opened = [i for i, _ in await storage.list_with_escalation_level(tx, resolved=False)]
            newest = await storage.list_incidents(tx, open_only=False)
        return list({i.id: i for i in [*opened, *newest]}.values())

    async def open_naming(self, service: str) -> builtins.list[Incident]:
        """The open incidents (drills left out) naming `service`, letter case aside, however
        many are open: newest first."""
        async with self.store.transaction() as tx:
            return await storage.open_naming(tx, service)

    async def list_page(
        self,
        *,
        open_only: bool = True,
        page: int = 1,
        page_size: int = LIST_PAGE_SIZE,
        drills: bool = False,
    ) -> IncidentPage:
        """Page `page` (from 1) of the incidents, newest first, with how many there are in
        all; a page past the end is empty. Drills are listed apart: only with `drills`."""
        async with self.store.transaction() as tx:
            total = await storage.count_incidents(tx, open_only=open_only, drills=drills)
            incidents = await storage.list_incidents(
                tx,
                open_only=open_only,
                limit=page_size,
                offset=(page - 1) * page_size,
                drills=drills,
            )
        return IncidentPage(tuple(incidents), total, page, page_size, open_only, drills)

    async def timeline(self, incident_id: str) -> builtins.list[TimelineEvent]:
        async with self.store.transaction() as tx:
            return await storage.timeline(tx, incident_id)

    async def with_timeline(
        self, incident_id: str
    ) -> tuple[Incident, builtins.list[TimelineEvent]]:
        """The incident and its timeline, oldest entry first; NotFound for an unknown ID."""
        incident_id = well_formed_id(incident_id)
        async with self.store.transaction() as tx:
            incident = await storage.get(tx, incident_id)
            if incident is None:
                raise NotFound(f"There is no incident {incident_id}.")
            return incident, await storage.timeline(tx, incident.id)
