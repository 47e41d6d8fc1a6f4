"""IncidentService's declarations: the day's number taken (in a transaction of its own),
the incident inserted, its timeline line, audit entry, announcement and war room queued in
the declaring change."""

from __future__ import annotations

from bot.errors import DuplicateRequest, PermissionDenied, StoreError
from bot.incidents import journal, storage, timeline_text
from bot.incidents.changes import Change, IncidentChange, Queued
from bot.incidents.effects import ANNOUNCE, WAR_ROOM
from bot.incidents.lifecycle import next_update_due
from bot.incidents.schemas import DeclareIncident
from bot.incidents.timeline_changes import TimelineChanges
from bot.models import Actor, Incident, Status
from bot.outbox import queue as outbox
from bot.store import uncounted


def incident_id(day: str, seq: int) -> str:
    return f"INC-{day}-{seq:03d}"


class IncidentDeclarations(TimelineChanges):
    """Declaring incidents (see IncidentService)."""

    async def declare(
        self, command: DeclareIncident, actor: Actor, *, request_id: str | None = None
    ) -> Incident:
        """Create an incident, audit it and queue its announcement, all in one transaction.

        Raises DuplicateRequest when `request_id` was already handled (a Slack retry),
        PermissionDenied when the actor may not declare.
        """
        # The bot itself declares when automatic recovery gives up (bot.remediation.recovery).
        if not actor.is_system and not await self.permissions.allows(actor, "declarers"):
            raise PermissionDenied("You are not allowed to declare incidents.")
        # The day's number is taken in a transaction of its own. Taken in the declaration's,
        # its counter row stays locked until that commits, and a burst of declarations is
        # served one transaction at a time (bench/README.md, "Hot paths").
        number = await self._take_number()
        try:
            async with self.changes.begin(request_id=request_id) as change:
                # Its timeline lines (declared, paged) and outbox rows (announcement, page
                # DM) written with one statement each at the commit, not one each.
                journal.buffer(change.tx)
                outbox.buffer(change.tx)
                return await self.declare_within(change, command, actor, number=number)
        except DuplicateRequest:
            # Refused before anything was written: the number goes back if it is still the
            # last one taken. Any other failure keeps it (the commit may have happened).
            await self._give_back(number)
            raise

    async def _take_number(self) -> tuple[str, int]:
        day = self.clock.now().astimezone(self.policy.calendar.zone).strftime("%Y%m%d")
        # One statement; a number is no change the command could be said to have made.
        with uncounted():
            async with self.store.autocommit() as db:
                return day, await storage.next_sequence(db, day)

    async def _give_back(self, number: tuple[str, int]) -> None:
        try:
            with uncounted():
                async with self.store.autocommit() as db:
                    await storage.give_back_sequence(db, *number)
        except StoreError:
            pass  # the number stays unused: numbers are unique, not gapless

    async def declare_within(
        self,
        change: Change,
        command: DeclareIncident,
        actor: Actor,
        *,
        number: tuple[str, int] | None = None,
    ) -> Incident:
        """Declare inside a change already open (alerts decide and declare in one transaction).
        `number`: the day and number already taken for it; taken in `change` when None.

        The caller has checked the actor may declare."""
        now = change.now
        if number is None:
            day = now.astimezone(self.policy.calendar.zone).strftime("%Y%m%d")
            number = day, await storage.next_sequence(change.tx, day)
        day, seq = number
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
            roles={} if actor.is_system else {"commander": actor.user_id},
            drill=command.drill,
            # Fired in this transaction by the escalation planner, which leaves the post to
            # the announcement (bot.escalation.firing).
            announced_page=self.policy.announced_page(command.severity),
        )
        incident = incident.evolve(next_update_due=next_update_due(self.policy, incident, now))
        await storage.insert(change.tx, incident, day=day, seq=seq)
        effects = [Queued(ANNOUNCE)]
        if self.policy.has_war_room(incident.severity):
            effects.append(Queued(WAR_ROOM))
        await change.record(
            incident.id,
            actor=actor.user_id,
            kind="declared",
            text=timeline_text.declared(incident, actor),
            said=incident.title,
            action="incident.declare",
            args=command.model_dump(mode="json"),
            effects=effects,
            # The impact it was declared with: what the status page shows until a published
            # status update says another (bot.status.storage.public_impacts).
            data={"impact": incident.impact},
        )
        await change.announce(IncidentChange("declared", None, incident, actor, now))
        return incident
