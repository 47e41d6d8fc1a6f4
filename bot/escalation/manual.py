"""Escalating by hand: `/incident escalate` and the Escalate button page the next level now."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from bot.errors import Conflict, PermissionDenied
from bot.escalation import planner
from bot.escalation import storage as escalations
from bot.escalation.firing import EscalationFiring
from bot.escalation.planner import ReminderKind
from bot.incidents.changes import Change, IncidentChange, IncidentChanges
from bot.incidents.schemas import MESSAGE_MAX
from bot.models import SYSTEM, Actor, Incident, Severity
from bot.notify import Page
from bot.permissions import Permissions
from bot.policy import Policy
from bot.reminders import storage as reminders
from bot.reminders.engine import ReminderEngine
from bot.reminders.model import PlannedReminder, ReminderStatus


@dataclass(frozen=True, slots=True)
class Escalation:
    """What `/incident escalate` did."""

    incident: Incident
    level: int
    recipients: tuple[str, ...]
    reminder_id: int
    last_level: int


class AlreadyEscalated(Conflict):
    """The escalation is no longer at the level the presser saw (someone, or the schedule,
    moved it on meanwhile): `level` is where it stands, paged by `by` (None: the schedule)
    at `at`, for the surface to name (escalation_text.already_escalated)."""

    def __init__(
        self,
        incident: Incident,
        *,
        seen_level: int,
        level: int,
        by: str | None,
        at: datetime | None,
    ) -> None:
        super().__init__(f"{incident.id} is at escalation level {level}, not {seen_level}.")
        self.incident = incident
        self.seen_level = seen_level
        self.level = level
        self.by = by
        self.at = at


class SeverityChanged(Conflict):
    """The severity changed since the card the presser saw (`seen_severity`): its Escalate
    would page the levels of `severity` instead, people the card did not offer. `level` of
    `levels` is where the escalation stands now, for the surface to name
    (escalation_text.severity_changed)."""

    def __init__(
        self,
        incident: Incident,
        *,
        seen_severity: Severity,
        severity: Severity,
        level: int,
        levels: int,
    ) -> None:
        super().__init__(f"{incident.id} is {severity} now, not {seen_severity}.")
        self.incident = incident
        self.seen_severity = seen_severity
        self.severity = severity
        self.level = level
        self.levels = levels


class ManualEscalation:
    """Pages the next level at once; the scheduled plan keeps its later levels."""

    def __init__(
        self,
        *,
        policy: Policy,
        permissions: Permissions,
        changes: IncidentChanges,
        engine: ReminderEngine,
        firing: EscalationFiring,
    ) -> None:
        self.policy = policy
        self.permissions = permissions
        self.changes = changes
        self.engine = engine
        self.firing = firing

    async def escalate(
        self,
        incident_id: str,
        actor: Actor,
        reason: str = "",
        request_id: str | None = None,
        *,
        seen_level: int | None = None,
        seen_severity: Severity | None = None,
    ) -> Escalation:
        """Page the next escalation level now, by hand (`/incident escalate`, the button).

        The level after the highest paged so far is paged at once (its scheduled page, if
        any, is withdrawn); later levels keep their times. Audited and on the timeline.
        With `seen_level` (the level the card's button showed), only while the escalation
        still stands there: checked under the incident's row lock, so of two people pressing
        at once one pages and the other gets AlreadyEscalated. With `seen_severity` (the
        severity the card showed), only while the severity is still that one: the next
        level of another severity names other people than the card offered
        (SeverityChanged).
        Raises PermissionDenied (not a responder), NotFound, Conflict (resolved, or every
        level already paged), SeverityChanged, AlreadyEscalated, DuplicateRequest (a Slack
        retry).
        """
        if not actor.is_system and not await self.permissions.allows(actor, "responders"):
            raise PermissionDenied("Only responders may escalate incidents.")
        # The command refuses a reason over MESSAGE_MAX; the bound is for other callers.
        reason = " ".join(reason.split())[:MESSAGE_MAX]
        async with self.changes.begin(request_id=request_id) as change:
            tx, now = change.tx, change.now
            incident = await change.lock(incident_id)
            if not incident.is_open:
                raise Conflict(f"{incident.id} is resolved; reopen it before escalating.")
            state = await escalations.get_state(tx, incident.id) or planner.initial_state(incident)
            levels = self.policy.levels(state.severity)
            if seen_severity is not None and seen_severity != state.severity:
                raise SeverityChanged(
                    incident,
                    seen_severity=seen_severity,
                    severity=state.severity,
                    level=state.level,
                    levels=len(levels),
                )
            if seen_level is not None and state.level != seen_level:
                paged = await escalations.last_page(tx, incident.id, state.level)
                by, at = paged if paged is not None else (None, None)
                raise AlreadyEscalated(
                    incident, seen_level=seen_level, level=state.level, by=by, at=at
                )
            chosen = planner.next_level(self.policy, state)
            if chosen is None:
                if not levels:
                    raise Conflict(f"{incident.severity} has no escalation levels to page.")
                raise Conflict(
                    f"{incident.id} has already paged every escalation level "
                    f"({len(levels)}) of {incident.severity}."
                )
            level, spec = chosen
            planned = PlannedReminder(ReminderKind.PAGE, now, level, tuple(spec.notify))
            await escalations.cancel_level(tx, incident.id, level, now, "paged by hand")
            reminder_id = await self.engine.insert_firing(
                tx, incident.id, state.plan, planned, now, reason=reason, actor=actor.user_id
            )
            page = Page(level, tuple(spec.notify), by=actor.user_id, reason=reason)
            await self.firing.page(
                change, incident, reminder_id, page, anchor=state.anchor_at, actor=actor
            )
            await reminders.finish(
                tx, reminder_id, self.engine.owner, ReminderStatus.FIRED, now, "paged by hand"
            )
            await escalations.save_state(tx, replace(state, level=level), now)
            details = {"level": level, "reason": reason}
            await change.announce(
                IncidentChange("escalated", incident, incident, actor, now, details)
            )
        return Escalation(incident, level, tuple(spec.notify), reminder_id, len(levels))

    async def page_after_unreached(
        self, change: Change, incident: Incident, level: int, anchor: float
    ) -> int | None:
        """Page the level after `level` now, because `level` reached nobody (every DM failed
        for good); the level's scheduled page is withdrawn, so its timer pages nobody twice.
        Only while the escalation still stands at `level` of the escalation anchored at
        `anchor`, unacknowledged: the caller holds the incident's row lock, so of two
        processes seeing the last failure one pages. Returns the level paged; 0 when `level`
        was the last (nobody is left to page); None when nothing is to be done."""
        tx, now = change.tx, change.now
        if not incident.is_open or incident.acknowledged_at is not None:
            return None
        state = await self.firing.current_state(tx, incident.id)
        if state is None or state.level != level or state.anchor_at.timestamp() != anchor:
            return None  # moved on (by hand, by its timer) or reopened since
        chosen = planner.next_level(self.policy, state)
        if chosen is None:
            return 0
        following, spec = chosen
        why = f"level {level} reached nobody"
        planned = PlannedReminder(ReminderKind.PAGE, now, following, tuple(spec.notify))
        await escalations.cancel_level(tx, incident.id, following, now, why)
        reminder_id = await self.engine.insert_firing(
            tx, incident.id, state.plan, planned, now, reason=why, actor=SYSTEM.user_id
        )
        page = Page(following, tuple(spec.notify), reason=why, since=state.started_by)
        await self.firing.page(change, incident, reminder_id, page, anchor=state.anchor_at)
        await reminders.finish(tx, reminder_id, self.engine.owner, ReminderStatus.FIRED, now, why)
        await escalations.save_state(tx, replace(state, level=following), now)
        return following
