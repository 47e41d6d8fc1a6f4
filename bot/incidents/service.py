"""IncidentService: declaring incidents and changing them through their lifecycle
(acknowledge, update, resolve, reopen, severity, roles, notes, war room, copied messages).

Plain async Python: no Slack imports. Every change goes through `bot.incidents.changes`:
the change, its audit entry and its notifications share one store transaction, and the
outbox is kicked after the commit. The read side is `bot.incidents.queries` (inherited, so
one service answers both); what each change tells Slack is `bot.incidents.effects`, the line
it writes on the timeline `bot.incidents.timeline_text`; how every change is applied and
recorded `bot.incidents.apply`; declaring `bot.incidents.declaring`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from bot.durations import humanize_seconds
from bot.errors import Conflict, NotifierError, PermissionDenied
from bot.incidents import timeline_text
from bot.incidents.apply import AlreadyOnTimeline, apply_change
from bot.incidents.changes import Change, IncidentChange
from bot.incidents.declaring import IncidentDeclarations, incident_id
from bot.incidents.lifecycle import ORDER, check_transition, next_update_due
from bot.incidents.service_base import Outcome
from bot.models import Actor, Incident, Severity, Status
from bot.permissions import NOT_A_PUBLISHER

__all__ = [
    "AlreadyAcknowledged",
    "AlreadyOnTimeline",
    "IncidentChange",
    "IncidentService",
    "Outcome",
    "incident_id",
]


class IncidentService(IncidentDeclarations):
    """Declares incidents and changes them; reads them too (IncidentQueries). Declaring is
    in IncidentDeclarations (declaring.py); roles, notes, the war room and copied messages
    in TimelineChanges (timeline_changes.py)."""

    # -- lifecycle -------------------------------------------------------------------------

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
        Besides the responders, whoever its severity's escalation levels name (user groups'
        members included), or one of its pages reached by direct message, may acknowledge it.
        """
        if not via and not await self._may_acknowledge(actor, incident_id):
            raise PermissionDenied(
                "Only responders, and the people its escalation pages, may acknowledge it."
            )
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
            after = await apply_change(
                self.changes,
                self.policy,
                incident_id,
                actor,
                action="incident.ack",
                args={},
                kind="acknowledged",
                mutate=mutate,
                timeline=lambda _b, _a: timeline_text.acknowledged(actor, via, via_person),
                request_id=request_id,
                effects=effects,
                details={"via": via} if via else None,
                said=via_person if via and actor.is_system else "",
            )
        except AlreadyAcknowledged as race:
            return Outcome(race.incident, changed=False)
        return Outcome(after)

    async def _may_acknowledge(self, actor: Actor, incident_id: str) -> bool:
        if actor.is_system:
            return True
        unanswered: NotifierError | None = None  # a user group Slack did not list
        try:
            if await self.permissions.allows(actor, "responders"):
                return True
        except NotifierError as exc:
            unanswered = exc
        # A page's Acknowledge button must work for the person it woke up: whoever the
        # severity's levels name, or a page reached by direct message (a paging service's
        # on-call person, a user group's member when it was paged).
        incident = await self.get(incident_id)
        paged = [t for level in self.policy.levels(incident.severity) for t in level.slack_targets]
        try:
            if await self.permissions.listed(actor, paged, empty_means_everyone=False):
                return True
        except NotifierError as exc:
            unanswered = unanswered or exc
        async with self.store.autocommit() as db:
            row = await db.fetchone(
                "SELECT 1 AS paged FROM page_recipients JOIN reminders"
                " ON reminders.id = page_recipients.reminder_id"
                " WHERE reminders.incident_id = ? AND page_recipients.user_id = ? LIMIT 1",
                (incident.id, actor.user_id),
            )
        if row is None and unanswered is not None:
            raise unanswered
        return row is not None

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
        publish: bool = False,
        within: Change | None = None,
        status_untouched: bool = False,
    ) -> Incident:
        """Post a status update; moving to RESOLVED resolves the incident.

        `eta` is how long until the expected fix, counted from now. `publish` puts the
        incident and this update on the status page, in the same transaction (the status
        listener, bot.status.service, reads it from the change's details).
        `status_untouched`: `status` is what a form showed when it opened, left as it was;
        a later status reached since stands (checked under the incident's lock).
        """
        await self._require_responder(actor)
        if publish and not await self.permissions.allows(actor, "publishers"):
            raise PermissionDenied(NOT_A_PUBLISHER)
        now = self.clock.now()
        details: dict[str, Any] = {"status": status.value, **({"publish": True} if publish else {})}

        def mutate(incident: Incident) -> Incident:
            if publish and incident.drill:  # the status listener would drop it unsaid
                raise Conflict(f"{incident.id} is a drill: practice never goes on the status page.")
            target = status
            if status_untouched and ORDER.index(incident.status) > ORDER.index(status):
                target = incident.status  # a resolved one is refused just below
            check_transition(incident.status, target)
            changes: dict[str, Any] = {
                "status": target,
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
            if impact is not None or publish:
                # The impact this update states (one published with it: the impact its form
                # showed), kept with it: the status page shows it while the update is on the
                # page, and no impact it did not publish (bot.status.storage.public_impacts).
                details["impact"] = after.impact
            return after.evolve(next_update_due=next_update_due(self.policy, after, now))

        kind = "resolved" if status is Status.RESOLVED else "updated"
        return await apply_change(
            self.changes,
            self.policy,
            incident_id,
            actor,
            action="incident.update",
            args={
                "status": status.value,
                "message": message,
                "eta": humanize_seconds(eta.total_seconds()) if eta is not None else None,
                "impact": impact,
                **({"publish": True} if publish else {}),
            },
            kind=kind,
            mutate=mutate,
            timeline=lambda b, a: timeline_text.status_update(
                b, a, actor, message, published=publish
            ),
            request_id=request_id,
            effects=effects,
            details=details,
            said=message,
            within=within,
        )

    async def resolve(
        self,
        incident_id: str,
        actor: Actor,
        *,
        summary: str,
        request_id: str | None = None,
        effects: Sequence[str] | None = None,
        within: Change | None = None,
    ) -> Incident:
        """Resolve with a summary (the resolution recorded for the report)."""
        return await self.update_status(
            incident_id,
            actor,
            status=Status.RESOLVED,
            message=summary,
            request_id=request_id,
            effects=effects,
            within=within,
        )

    async def reopen(
        self,
        incident_id: str,
        actor: Actor,
        *,
        reason: str = "",
        request_id: str | None = None,
        effects: Sequence[str] | None = None,
        within: Change | None = None,
    ) -> Incident:
        """Take a resolved incident back to INVESTIGATING (unacknowledged again).

        `within`: a change already open, used instead of a transaction of its own."""
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
                # The ETA was for the fix that was made: the reopening promises none.
                eta="",
                eta_at=None,
                # The reopening pages anew, in posts of its own: the declaration's page is over.
                announced_page=(),
            )
            return reopened.evolve(next_update_due=next_update_due(self.policy, reopened, now))

        return await apply_change(
            self.changes,
            self.policy,
            incident_id,
            actor,
            action="incident.reopen",
            args={"reason": reason},
            kind="reopened",
            mutate=mutate,
            timeline=lambda _b, _a: timeline_text.reopened(actor, reason),
            request_id=request_id,
            effects=effects,
            said=reason,
            within=within,
        )

    async def change_severity(
        self,
        incident_id: str,
        actor: Actor,
        *,
        severity: Severity,
        request_id: str | None = None,
        effects: Sequence[str] | None = None,
        within: Change | None = None,
    ) -> Incident:
        """Change the severity; the update cadence (and escalation plan) follow it.

        `within`: a change already open (alerts raise it as they decide)."""
        await self._require_responder(actor)
        now = self.clock.now()
        details: dict[str, Any] = {"severity": severity.value}

        def mutate(incident: Incident) -> Incident:
            if not incident.is_open:
                raise Conflict(f"{incident.id} is resolved; reopen it to change its severity.")
            if incident.severity is severity:
                raise Conflict(f"{incident.id} is already {severity}.")
            details["from"] = incident.severity.value  # a lowering is told where P1 was
            changed = incident.evolve(severity=severity)
            return changed.evolve(next_update_due=next_update_due(self.policy, changed, now))

        return await apply_change(
            self.changes,
            self.policy,
            incident_id,
            actor,
            action="incident.severity",
            args={"severity": severity.value},
            kind="severity_changed",
            mutate=mutate,
            timeline=lambda b, a: timeline_text.severity_changed(b, a, actor),
            request_id=request_id,
            effects=effects,
            details=details,
            within=within,
        )


class AlreadyAcknowledged(Conflict):
    """Lost the race to another acknowledgement; `incident` says who was first (its
    `acknowledged_by`), for the surface to name (templates.already_acknowledged)."""

    def __init__(self, incident: Incident) -> None:
        super().__init__(f"{incident.id} was already acknowledged.")
        self.incident = incident
