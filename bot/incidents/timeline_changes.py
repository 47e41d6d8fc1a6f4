"""IncidentService's changes that write the timeline without moving the lifecycle: roles,
notes, the war room's set-up run again, and a Slack message copied to the timeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot import refs
from bot.errors import Conflict
from bot.incidents import storage, timeline_text
from bot.incidents.apply import AlreadyOnTimeline, apply_change
from bot.incidents.service_base import IncidentServiceBase, Outcome
from bot.models import Actor, Incident, IncidentRole


class AlreadyAssigned(Conflict):
    """`user_id` already holds `role` on `incident`: nothing to change, for the surface to
    say (templates.already_assigned)."""

    def __init__(self, incident: Incident, role: IncidentRole, user_id: str) -> None:
        super().__init__(f"{incident.id}: {user_id} is already {role.value}.")
        self.incident = incident
        self.role = role
        self.user_id = user_id


class TimelineChanges(IncidentServiceBase):
    """Roles, notes, the war room and copied messages (see IncidentService)."""

    async def assign(
        self,
        incident_id: str,
        actor: Actor,
        *,
        role: IncidentRole,
        user_id: str,
        request_id: str | None = None,
        effects: Sequence[str] | None = None,
    ) -> Incident:
        """Give `role` to `user_id` (one person a role; assigning again replaces). Raises
        AlreadyAssigned, changing nothing, when `user_id` holds the role already."""
        await self._require_responder(actor)

        def mutate(incident: Incident) -> Incident:
            if not incident.is_open:
                raise Conflict(f"{incident.id} is resolved; reopen it to assign roles.")
            if incident.roles.get(role.value) == user_id:
                # A second notice, timeline line and topic refresh would say nothing new.
                raise AlreadyAssigned(incident, role, user_id)
            return incident.evolve(roles={**incident.roles, role.value: user_id})

        return await apply_change(
            self.changes,
            self.policy,
            incident_id,
            actor,
            action="incident.assign",
            args={"role": role.value, "user": user_id},
            kind="assigned",
            mutate=mutate,
            timeline=lambda _b, _a: timeline_text.assigned(role, user_id, actor),
            request_id=request_id,
            effects=effects,
            details={"role": role.value, "user": user_id},
        )

    async def add_note(
        self,
        incident_id: str,
        actor: Actor,
        *,
        text: str,
        kind: str = "noted",
        request_id: str | None = None,
        effects: Sequence[str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> Incident:
        """Add a timeline entry (a note, or a message pinned by reaction), as a responder:
        the timeline is the incident's record, and its report's."""
        await self._require_responder(actor)
        return await apply_change(
            self.changes,
            self.policy,
            incident_id,
            actor,
            action="incident.note",
            args={"text": text, **(details or {})},
            kind=kind,
            mutate=lambda incident: incident,
            timeline=lambda _b, _a: text,
            request_id=request_id,
            effects=effects,
            details=details,
            said=text,
        )

    async def retry_war_room(
        self, incident_id: str, actor: Actor, *, request_id: str | None = None
    ) -> Incident:
        """Open the war room, or run its set-up again (invites, topic, pinned summary).

        Every step is idempotent, so this is safe after a partial failure; it also opens a
        war room for an incident whose severity does not call for one.
        """
        await self._require_responder(actor)

        def mutate(incident: Incident) -> Incident:
            if not incident.is_open:
                raise Conflict(f"{incident.id} is resolved; reopen it to use a war room.")
            return incident

        return await apply_change(
            self.changes,
            self.policy,
            incident_id,
            actor,
            action="incident.warroom",
            args={},
            kind="war_room_requested",
            mutate=mutate,
            timeline=lambda b, _a: timeline_text.war_room_requested(b, actor),
            request_id=request_id,
        )

    async def add_message_to_timeline(
        self,
        *,
        channel_id: str,
        message_ts: str,
        actor: Actor,
        request_id: str | None = None,
    ) -> Outcome | None:
        """Copy a Slack message of a war room to its incident's timeline, once per message.

        None when the channel is no incident's war room (the reaction is not for us);
        `changed=False` when the message is already on the timeline or cannot be read.
        Raises PermissionDenied when `actor` is no responder (as `/incident note` does),
        NotifierError when Slack refuses to show the message.
        """
        source = f"slack:{channel_id}:{message_ts}"
        async with self.store.transaction() as tx:
            incident = await storage.get_by_channel(tx, channel_id)
            if incident is None:
                return None
            if await storage.has_timeline_source(tx, incident.id, source):
                return Outcome(incident, changed=False, message="already on the timeline")
        await self._require_responder(actor)
        if self.notifier is None:
            raise Conflict("No way to read Slack messages is configured.")
        # Read outside the transaction: a Slack round trip must not hold a database lock.
        message = await self.notifier.fetch_message(channel_id, message_ts)
        if message is None:
            return Outcome(incident, changed=False, message="message not found")
        excerpt = timeline_text.message_excerpt(message.text)
        author = refs.Person(message.user) if message.user else "a bot"
        details = {"channel": channel_id, "ts": message_ts, "author": message.user}
        try:
            after = await apply_change(
                self.changes,
                self.policy,
                incident.id,
                actor,
                action="incident.timeline_message",
                args=details,
                kind="message_added",
                mutate=lambda current: current,
                timeline=lambda _b, _a: refs.text(author, f": {excerpt}"),
                request_id=request_id,
                effects=(),
                details=details,
                source=source,
                said=excerpt,
            )
        except AlreadyOnTimeline as race:
            return Outcome(race.incident, changed=False, message="already on the timeline")
        return Outcome(after)
