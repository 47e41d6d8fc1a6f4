"""IncidentService: declaring incidents and moving them through their lifecycle.

Plain async Python: no Slack imports. Every change goes through `bot.incidents.changes`:
the change, its audit entry and its notifications share one store transaction, and the
outbox is kicked after the commit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.clock import Clock
from bot.durations import humanize_seconds
from bot.errors import Conflict, NotFound, PermissionDenied, UsageError
from bot.incidents import storage
from bot.incidents.changes import IncidentChange, IncidentChanges, Queued
from bot.incidents.lifecycle import check_transition
from bot.incidents.schemas import INCIDENT_ID, LIST_PAGE_SIZE, DeclareIncident
from bot.models import (
    Actor,
    Incident,
    IncidentPage,
    IncidentRole,
    Severity,
    Status,
    TimelineEvent,
)
from bot.notify import Notifier
from bot.paging.config import PROVIDER_NAMES
from bot.permissions import Permissions
from bot.policy import Policy
from bot.redact import redact_text
from bot.store import Store

# Outbox effect kinds, delivered by bot.incidents.flows after the change commits.
ANNOUNCE = "incident.announce"  # the incident card in the announcement channel
WAR_ROOM = "incident.war_room"  # create the war room (or find it), then queue its set-up
INVITE = "incident.invite"  # invite people into the war room
SUMMARY = "incident.summary"  # post (or edit) the summary card in the war room
PIN = "incident.pin"  # pin the summary card
POST_UPDATE = "incident.post_update"  # a status update in the communication template
NOTICE = "incident.notice"  # one line in the incident channel (ack, roles, notes)
REFRESH = "incident.refresh"  # edit the cards in place; the war-room topic when it changed

# What each kind of change tells Slack unless the caller names the effects itself.
EFFECTS_OF_CHANGE: dict[str, tuple[str, ...]] = {
    "acknowledged": (NOTICE, REFRESH),
    "updated": (POST_UPDATE, REFRESH),
    "resolved": (POST_UPDATE, REFRESH),
    "reopened": (POST_UPDATE, REFRESH),
    "severity_changed": (POST_UPDATE, REFRESH),
    "assigned": (INVITE, NOTICE, REFRESH),
    "noted": (NOTICE,),
    "war_room_requested": (WAR_ROOM,),
}
# Timeline text copied from a Slack message is cut to this many characters.
MESSAGE_EXCERPT_MAX = 1500
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a lifecycle method did: the incident after it, and whether anything changed."""

    incident: Incident
    changed: bool = True
    message: str = ""


def incident_id(day: str, seq: int) -> str:
    return f"INC-{day}-{seq:03d}"


class IncidentService:
    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        policy: Policy,
        changes: IncidentChanges,
        permissions: Permissions,
        notifier: Notifier | None = None,
    ) -> None:
        self.permissions = permissions
        # Only read from (a message copied to the timeline); sending goes through the outbox.
        self.notifier = notifier
        self.store = store
        self.clock = clock
        self.policy = policy
        self.changes = changes

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
        async with self.changes.begin(request_id=request_id) as change:
            now = change.now
            day = now.astimezone(self.policy.calendar.zone).strftime("%Y%m%d")
            seq = await storage.next_sequence(change.tx, day)
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
            )
            incident = incident.evolve(next_update_due=self._next_update_due(incident, now))
            await storage.insert(change.tx, incident, day=day, seq=seq)
            effects = [Queued(ANNOUNCE)]
            if self.policy.has_war_room(incident.severity):
                effects.append(Queued(WAR_ROOM))
            await change.record(
                incident.id,
                actor=actor.user_id,
                kind="declared",
                text=f"Declared {incident.severity} by <@{actor.user_id}>: {incident.title}",
                said=incident.title,
                action="incident.declare",
                args=command.model_dump(mode="json"),
                effects=effects,
            )
            await change.announce(IncidentChange("declared", None, incident, actor, now))
        return incident

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

    async def list(self, *, open_only: bool = True) -> list[Incident]:
        async with self.store.transaction() as tx:
            return await storage.list_incidents(tx, open_only=open_only)

    async def list_page(
        self, *, open_only: bool = True, page: int = 1, page_size: int = LIST_PAGE_SIZE
    ) -> IncidentPage:
        """Page `page` (from 1) of the incidents, newest first, with how many there are in
        all; a page past the end is empty."""
        async with self.store.transaction() as tx:
            total = await storage.count_incidents(tx, open_only=open_only)
            incidents = await storage.list_incidents(
                tx, open_only=open_only, limit=page_size, offset=(page - 1) * page_size
            )
        return IncidentPage(tuple(incidents), total, page, page_size, open_only)

    async def timeline(self, incident_id: str) -> list[TimelineEvent]:
        async with self.store.transaction() as tx:
            return await storage.timeline(tx, incident_id)

    async def with_timeline(self, incident_id: str) -> tuple[Incident, list[TimelineEvent]]:
        """The incident and its timeline, oldest entry first; NotFound for an unknown ID."""
        incident_id = well_formed_id(incident_id)
        async with self.store.transaction() as tx:
            incident = await storage.get(tx, incident_id)
            if incident is None:
                raise NotFound(f"There is no incident {incident_id}.")
            return incident, await storage.timeline(tx, incident.id)

    # -- lifecycle -------------------------------------------------------------------------

    async def _apply(
        self,
        incident_id: str,
        actor: Actor,
        *,
        action: str,
        args: dict[str, Any],
        kind: str,
        mutate: Callable[[Incident], Incident],
        timeline: Callable[[Incident, Incident], str],
        request_id: str | None,
        effects: Sequence[str] | None = None,
        details: dict[str, Any] | None = None,
        source: str | None = None,
        said: str = "",
    ) -> Incident:
        """Lock the incident, apply `mutate`, and record everything in one transaction.

        `mutate` raises Conflict to refuse; nothing is written then. `effects` None means the
        usual ones for `kind` (EFFECTS_OF_CHANGE). A `source` already on the timeline raises
        AlreadyOnTimeline: a copied message is recorded once. `said` is the end of the
        timeline text that the person wrote (TimelineEvent.said).
        """
        incident_id = well_formed_id(incident_id)
        async with self.changes.begin(request_id=request_id) as change:
            before = await change.lock(incident_id)
            if source is not None and await storage.has_timeline_source(
                change.tx, before.id, source
            ):
                raise AlreadyOnTimeline(before)
            after = await storage.update(change.tx, mutate(before).evolve(updated_at=change.now))
            text = timeline(before, after)
            if effects is None:
                effects = self._effects_for(kind, after)
            payload: dict[str, Any] = {
                "kind": kind,
                "text": text,
                "said": said,
                "actor": actor.user_id,
                "details": details or {},
            }
            queued: list[Queued] = []
            for effect in effects:
                if effect == POST_UPDATE:
                    # An update shows the incident as it was at this change, however late it
                    # is delivered; one effect per channel so a retry never posts twice.
                    snapshot = payload | {"snapshot": storage.snapshot(after)}
                    queued += [
                        Queued(effect, snapshot | {"target": target})
                        for target in ("incident", "announce")
                    ]
                else:
                    queued.append(Queued(effect, payload))
            await change.record(
                after.id,
                actor=actor.user_id,
                kind=kind,
                text=text,
                action=action,
                args=args,
                effects=queued,
                data=details,
                source=source,
                said=said,
            )
            await change.announce(
                IncidentChange(kind, before, after, actor, change.now, details or {})
            )
        return after

    def _effects_for(self, kind: str, incident: Incident) -> tuple[str, ...]:
        effects = EFFECTS_OF_CHANGE.get(kind, ())
        # A severity that now calls for a war room (or a reopened incident whose war room
        # never opened) gets one.
        if (
            kind in ("severity_changed", "reopened")
            and incident.is_open
            and incident.channel_id is None
            and self.policy.has_war_room(incident.severity)
        ):
            effects = (WAR_ROOM, *effects)
        return effects

    async def _require_responder(self, actor: Actor) -> None:
        if actor.is_system:
            return
        if not await self.permissions.allows(actor, "responders"):
            raise PermissionDenied("Only responders may change incidents.")

    def _next_update_due(self, incident: Incident, now: datetime) -> datetime | None:
        cadence = self.policy.targets(incident.severity).update_every
        if not incident.is_open or cadence is None or cadence.is_zero:
            return None
        return now + cadence.as_timedelta()

    async def acknowledge(
        self,
        incident_id: str,
        actor: Actor,
        *,
        request_id: str | None = None,
        effects: Sequence[str] | None = None,
        via: str = "",
        via_person: str = "",
    ) -> Outcome:
        """Record the first acknowledgement; a second one changes nothing and says who acked.

        `via` names the paging service (pagerduty, opsgenie) where the person acknowledged,
        which vouched for them: no role is required then. `actor` is their Slack user, or
        SYSTEM with `via_person` (the provider's name for them) when they have none.
        """
        if not via:
            await self._require_responder(actor)
        current = await self.get(incident_id)
        if current.acknowledged_at is not None:
            return Outcome(current, changed=False)
        if not current.is_open:
            raise Conflict(f"{current.id} is resolved; there is nothing to acknowledge.")

        def mutate(incident: Incident) -> Incident:
            if incident.acknowledged_at is not None:
                # Lost the race to another click: refuse so nothing is recorded twice.
                raise AlreadyAcknowledged(incident)
            if not incident.is_open:
                raise Conflict(f"{incident.id} is resolved; there is nothing to acknowledge.")
            return incident.evolve(acknowledged_at=self.clock.now(), acknowledged_by=actor.user_id)

        try:
            after = await self._apply(
                incident_id,
                actor,
                action="incident.ack",
                args={},
                kind="acknowledged",
                mutate=mutate,
                timeline=lambda _b, _a: _acknowledged_text(actor, via, via_person),
                request_id=request_id,
                effects=effects,
                details={"via": via} if via else None,
                said=via_person if via and actor.is_system else "",
            )
        except AlreadyAcknowledged as race:
            return Outcome(race.incident, changed=False)
        return Outcome(after)

    async def update_status(
        self,
        incident_id: str,
        actor: Actor,
        *,
        status: Status,
        message: str,
        eta: timedelta | None = None,
        impact: str | None = None,
        request_id: str | None = None,
        effects: Sequence[str] | None = None,
    ) -> Incident:
        """Post a status update; moving to RESOLVED resolves the incident.

        `eta` is how long until the expected fix, counted from now.
        """
        await self._require_responder(actor)
        now = self.clock.now()

        def mutate(incident: Incident) -> Incident:
            check_transition(incident.status, status)
            changes: dict[str, Any] = {
                "status": status,
                "current_status": message,
                "next_update_due": None,
            }
            if eta is not None:
                changes["eta"] = "in " + humanize_seconds(eta.total_seconds())
                changes["eta_at"] = now + eta
            if impact is not None:
                changes["impact"] = impact
            if status is Status.RESOLVED:
                changes |= {"resolved_at": now, "resolved_by": actor.user_id, "resolution": message}
            after = incident.evolve(**changes)
            return after.evolve(next_update_due=self._next_update_due(after, now))

        def describe(before: Incident, after: Incident) -> str:
            moved = (
                f"{before.status.label} → {after.status.label}"
                if before.status is not after.status
                else after.status.label
            )
            return f"Update ({moved}) by <@{actor.user_id}>: {message}"

        kind = "resolved" if status is Status.RESOLVED else "updated"
        return await self._apply(
            incident_id,
            actor,
            action="incident.update",
            args={
                "status": status.value,
                "message": message,
                "eta": humanize_seconds(eta.total_seconds()) if eta is not None else None,
                "impact": impact,
            },
            kind=kind,
            mutate=mutate,
            timeline=describe,
            request_id=request_id,
            effects=effects,
            details={"status": status.value},
            said=message,
        )

    async def resolve(
        self,
        incident_id: str,
        actor: Actor,
        *,
        summary: str,
        request_id: str | None = None,
        effects: Sequence[str] | None = None,
    ) -> Incident:
        """Resolve with a summary (the resolution recorded for the report)."""
        return await self.update_status(
            incident_id,
            actor,
            status=Status.RESOLVED,
            message=summary,
            request_id=request_id,
            effects=effects,
        )

    async def reopen(
        self,
        incident_id: str,
        actor: Actor,
        *,
        reason: str = "",
        request_id: str | None = None,
        effects: Sequence[str] | None = None,
    ) -> Incident:
        """Take a resolved incident back to INVESTIGATING (unacknowledged again)."""
        await self._require_responder(actor)
        now = self.clock.now()

        def mutate(incident: Incident) -> Incident:
            if incident.is_open:
                raise Conflict(f"{incident.id} is not resolved; only a resolved incident reopens.")
            reopened = incident.evolve(
                status=Status.INVESTIGATING,
                resolved_at=None,
                resolved_by=None,
                acknowledged_at=None,
                acknowledged_by=None,
                current_status=reason or "Reopened.",
            )
            return reopened.evolve(next_update_due=self._next_update_due(reopened, now))

        return await self._apply(
            incident_id,
            actor,
            action="incident.reopen",
            args={"reason": reason},
            kind="reopened",
            mutate=mutate,
            timeline=lambda _b, _a: (
                f"Reopened by <@{actor.user_id}>" + (f": {reason}" if reason else "")
            ),
            request_id=request_id,
            effects=effects,
            said=reason,
        )

    async def change_severity(
        self,
        incident_id: str,
        actor: Actor,
        *,
        severity: Severity,
        request_id: str | None = None,
        effects: Sequence[str] | None = None,
    ) -> Incident:
        """Change the severity; the update cadence (and escalation plan) follow it."""
        await self._require_responder(actor)
        now = self.clock.now()

        def mutate(incident: Incident) -> Incident:
            if not incident.is_open:
                raise Conflict(f"{incident.id} is resolved; reopen it to change its severity.")
            if incident.severity is severity:
                raise Conflict(f"{incident.id} is already {severity}.")
            changed = incident.evolve(severity=severity)
            return changed.evolve(next_update_due=self._next_update_due(changed, now))

        return await self._apply(
            incident_id,
            actor,
            action="incident.severity",
            args={"severity": severity.value},
            kind="severity_changed",
            mutate=mutate,
            timeline=lambda b, a: f"Severity {b.severity} → {a.severity} by <@{actor.user_id}>",
            request_id=request_id,
            effects=effects,
            details={"severity": severity.value},
        )

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
        """Give `role` to `user_id` (one person a role; assigning again replaces)."""
        await self._require_responder(actor)

        def mutate(incident: Incident) -> Incident:
            if not incident.is_open:
                raise Conflict(f"{incident.id} is resolved; reopen it to assign roles.")
            return incident.evolve(roles={**incident.roles, role.value: user_id})

        return await self._apply(
            incident_id,
            actor,
            action="incident.assign",
            args={"role": role.value, "user": user_id},
            kind="assigned",
            mutate=mutate,
            timeline=lambda _b, _a: f"<@{user_id}> is {role.value}, assigned by <@{actor.user_id}>",
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
        """Add a timeline entry (a note, or a message pinned by reaction)."""
        return await self._apply(
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

        def describe(before: Incident, _after: Incident) -> str:
            if before.channel_id:
                return f"War room set-up run again by <@{actor.user_id}>"
            return f"War room requested by <@{actor.user_id}>"

        return await self._apply(
            incident_id,
            actor,
            action="incident.warroom",
            args={},
            kind="war_room_requested",
            mutate=mutate,
            timeline=describe,
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
        Raises NotifierError when Slack refuses to show the message.
        """
        source = f"slack:{channel_id}:{message_ts}"
        async with self.store.transaction() as tx:
            incident = await storage.get_by_channel(tx, channel_id)
            if incident is None:
                return None
            if await storage.has_timeline_source(tx, incident.id, source):
                return Outcome(incident, changed=False, message="already on the timeline")
        if self.notifier is None:
            raise Conflict("No way to read Slack messages is configured.")
        # Read outside the transaction: a Slack round trip must not hold a database lock.
        message = await self.notifier.fetch_message(channel_id, message_ts)
        if message is None:
            return Outcome(incident, changed=False, message="message not found")
        # A pasted connection string must not be kept (or shown back) in the timeline. A
        # message may hold 40,000 characters: cut before redacting, with a margin so a secret
        # across the final cut is still whole enough to be masked.
        excerpt = redact_text(message.text.strip()[: MESSAGE_EXCERPT_MAX * 2])
        if len(excerpt) > MESSAGE_EXCERPT_MAX:
            excerpt = excerpt[: MESSAGE_EXCERPT_MAX - 1] + "…"
        author = f"<@{message.user}>" if message.user else "a bot"
        details = {"channel": channel_id, "ts": message_ts, "author": message.user}
        try:
            after = await self._apply(
                incident.id,
                actor,
                action="incident.timeline_message",
                args=details,
                kind="message_added",
                mutate=lambda current: current,
                timeline=lambda _b, _a: f"{author}: {excerpt}",
                request_id=request_id,
                effects=(),
                details=details,
                source=source,
                said=excerpt,
            )
        except AlreadyOnTimeline as race:
            return Outcome(race.incident, changed=False, message="already on the timeline")
        return Outcome(after)


def _acknowledged_text(actor: Actor, via: str, via_person: str) -> str:
    if not via:
        return f"Acknowledged by <@{actor.user_id}>"
    where = PROVIDER_NAMES.get(via, via)
    if actor.is_system:
        # The provider's name for the person ends the line: their words, shown as text.
        return f"Acknowledged in {where} by {via_person}"
    return f"Acknowledged in {where} by <@{actor.user_id}>"


def well_formed_id(incident_id: str) -> str:
    """`incident_id` upper-cased; NotFound (without repeating it) when it cannot be one: a
    button's value or a form's metadata is checked before it reaches the database."""
    upper = incident_id.upper()
    if not INCIDENT_ID.match(upper):
        raise NotFound("There is no such incident; IDs look like INC-20261127-001.")
    return upper


class AlreadyOnTimeline(Conflict):
    def __init__(self, incident: Incident) -> None:
        super().__init__(f"That message is already on the timeline of {incident.id}.")
        self.incident = incident


class AlreadyAcknowledged(Conflict):
    def __init__(self, incident: Incident) -> None:
        super().__init__(
            f"{incident.id} was already acknowledged by <@{incident.acknowledged_by}>."
        )
        self.incident = incident
