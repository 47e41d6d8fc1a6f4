"""Which reminders an incident needs, and when: pure functions of (incident, policy, now).

Nothing here reads the store or the clock. The service calls these inside the transaction
that changed the incident and writes what they return, so a plan and the change it follows
commit together.

Rules (the severity and escalation matrices of the policy):

- On declaration each escalation level is planned at declaration + `after`; a level with
  `after: 0` is due at once. Pages only go out while the incident is unacknowledged.
- `ack_within` and `resolve_within` become breach warnings (business days on the calendar).
- The commander is reminded when an update is due (`incident.next_update_due`, kept by the
  incident service); a reminder that fires unanswered repeats every `update_every`.
- Acknowledging cancels the pages and the acknowledgement breach; resolving cancels every
  open-incident reminder and plans the preliminary and formal reviews; reopening cancels
  the reviews and starts a new plan counted from the reopening; a severity change re-plans
  pages and targets for the new severity from the same start, without paging again the
  levels already paged and without warning twice about a breach already recorded; raising
  it pages at once the people of the levels already reached whom nobody paged yet.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from bot.models import Incident, Severity
from bot.policy import EscalationLevel, Policy
from bot.reminders.calendar import due_after
from bot.reminders.model import PlannedReminder, Reminder


class ReminderKind(StrEnum):
    """Escalation's reminder kinds (registered with the engine, bot.reminders.kinds)."""

    PAGE = "page"
    ACK_BREACH = "ack_breach"
    RESOLVE_BREACH = "resolve_breach"
    UPDATE_DUE = "update_due"
    PRELIMINARY_REVIEW = "review_preliminary"
    FORMAL_REVIEW = "review_formal"


ACK_BOUND = frozenset({ReminderKind.PAGE, ReminderKind.ACK_BREACH})
OPEN_BOUND = frozenset(
    {
        ReminderKind.PAGE,
        ReminderKind.ACK_BREACH,
        ReminderKind.RESOLVE_BREACH,
        ReminderKind.UPDATE_DUE,
    }
)
REVIEWS = frozenset({ReminderKind.PRELIMINARY_REVIEW, ReminderKind.FORMAL_REVIEW})

# An update-due reminder is stale when the next update moved past its due time by more than
# this: someone posted an update after it was planned.
_UPDATE_SLACK = timedelta(seconds=1)

# What started an escalation (EscalationState.started_by, Page.since).
DECLARED = "declared"
REOPENED = "reopened"


@dataclass(frozen=True, slots=True)
class EscalationState:
    """Where an incident's escalation stands: the one active plan (one row per incident).

    `plan` grows with every re-plan, so a reminder of an older plan knows it is stale.
    `anchor_at` is what `after` and the targets count from (declaration or reopening).
    `level` is the highest level paged in this escalation (0: nobody yet).
    `started_by` says what started it, "declared" or "reopened" (the page line says it).
    """

    incident_id: str
    plan: int
    severity: Severity
    anchor_at: datetime
    level: int = 0
    ack_breached_at: datetime | None = None
    resolve_breached_at: datetime | None = None
    started_by: str = DECLARED


@dataclass(frozen=True, slots=True)
class Replan:
    """What a change does to the reminders: cancel pending ones of some kinds, add others."""

    cancel: frozenset[ReminderKind]
    reminders: tuple[PlannedReminder, ...]
    state: EscalationState

    @property
    def is_empty(self) -> bool:
        return not self.cancel and not self.reminders


def page_reminders(
    policy: Policy, severity: Severity, anchor: datetime, *, above_level: int = 0
) -> list[PlannedReminder]:
    """One page per escalation level above `above_level`, due at anchor + `after`."""
    return [
        PlannedReminder(
            ReminderKind.PAGE,
            anchor + level.after.as_timedelta(),
            level=number,
            notify=tuple(level.notify),
        )
        for number, level in enumerate(policy.levels(severity), start=1)
        if number > above_level
    ]


def target_reminders(
    policy: Policy,
    incident: Incident,
    anchor: datetime,
    *,
    ack: bool = True,
    resolve: bool = True,
) -> list[PlannedReminder]:
    """Breach warnings for the severity's acknowledgement and resolution targets."""
    times = policy.response_times(incident.severity)
    planned = []
    if ack and incident.acknowledged_at is None:
        due = due_after(anchor, times.ack_within, policy.calendar)
        planned.append(PlannedReminder(ReminderKind.ACK_BREACH, due))
    if resolve:
        due = due_after(anchor, times.resolve_within, policy.calendar)
        planned.append(PlannedReminder(ReminderKind.RESOLVE_BREACH, due))
    return planned


def update_reminders(incident: Incident) -> list[PlannedReminder]:
    """The commander's next "update due" reminder, when the severity has a cadence."""
    if not incident.is_open or incident.next_update_due is None:
        return []
    return [PlannedReminder(ReminderKind.UPDATE_DUE, incident.next_update_due)]


def review_reminders(policy: Policy, incident: Incident) -> list[PlannedReminder]:
    """Preliminary and formal post-incident reviews, counted from the resolution; none for
    a drill, which has no review to hold (its report is posted when it ends)."""
    if incident.resolved_at is None or incident.drill:
        return []
    reviews = policy.reviews
    return [
        PlannedReminder(
            ReminderKind.PRELIMINARY_REVIEW,
            due_after(incident.resolved_at, reviews.preliminary_within, policy.calendar),
        ),
        PlannedReminder(
            ReminderKind.FORMAL_REVIEW,
            due_after(incident.resolved_at, reviews.formal_within, policy.calendar),
        ),
    ]


def plan_declared(incident: Incident, policy: Policy) -> Replan:
    """Everything a new incident needs: its pages, its targets, its first update reminder."""
    anchor = incident.declared_at
    state = EscalationState(incident.id, plan=1, severity=incident.severity, anchor_at=anchor)
    reminders = [
        *page_reminders(policy, incident.severity, anchor),
        *target_reminders(policy, incident, anchor),
        *update_reminders(incident),
    ]
    return Replan(frozenset(), tuple(reminders), state)


def initial_state(incident: Incident) -> EscalationState:
    """The state of an incident planned before this engine existed (plan 0)."""
    return EscalationState(
        incident.id, plan=0, severity=incident.severity, anchor_at=incident.declared_at
    )


def plan_change(
    kind: str,
    before: Incident | None,
    after: Incident,
    policy: Policy,
    state: EscalationState,
    now: datetime,
    paged: frozenset[str] = frozenset(),
) -> Replan:
    """The re-plan for one lifecycle change (`IncidentChange.kind`); `paged`: the targets
    this escalation has paged so far (read for a severity change only)."""
    if kind == "declared":
        return plan_declared(after, policy)
    if kind == "acknowledged":
        return Replan(ACK_BOUND, (), state)
    if kind == "resolved":
        return Replan(OPEN_BOUND, tuple(review_reminders(policy, after)), state)
    if kind == "reopened":
        fresh = EscalationState(
            after.id,
            plan=state.plan + 1,
            severity=after.severity,
            anchor_at=now,
            started_by=REOPENED,
        )
        reminders = [
            *page_reminders(policy, after.severity, now),
            *target_reminders(policy, after, now),
            *update_reminders(after),
        ]
        return Replan(OPEN_BOUND | REVIEWS, tuple(reminders), fresh)
    if kind == "severity_changed":
        return _plan_severity_change(after, policy, state, now, paged)
    if before is not None and before.next_update_due != after.next_update_due:
        # A status update (or anything else that moved the next update) re-plans the reminder.
        return Replan(frozenset({ReminderKind.UPDATE_DUE}), tuple(update_reminders(after)), state)
    return Replan(frozenset(), (), state)


def _plan_severity_change(
    incident: Incident, policy: Policy, state: EscalationState, now: datetime, paged: frozenset[str]
) -> Replan:
    # Same start, new matrix row. Levels already paged stay paged; a level whose time has
    # already come under the new severity is due at once (the planned time is in the past).
    new_state = replace(state, plan=state.plan + 1, severity=incident.severity)
    reminders: list[PlannedReminder] = []
    if incident.acknowledged_at is None:
        if incident.severity.value < state.severity.value:  # raised (P0 is the highest)
            reminders += catch_up_pages(policy, state, incident.severity, now, paged)
        reminders += page_reminders(
            policy, incident.severity, state.anchor_at, above_level=state.level
        )
    reminders += target_reminders(
        policy,
        incident,
        state.anchor_at,
        ack=state.ack_breached_at is None,
        resolve=state.resolve_breached_at is None,
    )
    reminders += update_reminders(incident)
    return Replan(OPEN_BOUND, tuple(reminders), new_state)


def catch_up_pages(
    policy: Policy,
    state: EscalationState,
    raised_to: Severity,
    now: datetime,
    already: frozenset[str] = frozenset(),
) -> list[PlannedReminder]:
    """When the severity is raised, the people its levels already reached (1 to
    `state.level`) name whom neither the old severity's levels nor this escalation's pages
    (`already`) did: paged now, each level with only them. Nobody is paged twice."""
    old_levels = policy.levels(state.severity)[: state.level]
    paged = set(already) | {target for level in old_levels for target in level.notify}
    pages: list[PlannedReminder] = []
    for number, level in enumerate(policy.levels(raised_to)[: state.level], start=1):
        missing = tuple(target for target in level.notify if target not in paged)
        if missing:
            pages.append(PlannedReminder(ReminderKind.PAGE, now, level=number, notify=missing))
            paged.update(missing)
    return pages


def next_level(policy: Policy, state: EscalationState) -> tuple[int, EscalationLevel] | None:
    """The level a manual escalation pages: the one after the highest paged so far."""
    levels = policy.levels(state.severity)
    if state.level >= len(levels):
        return None
    return state.level + 1, levels[state.level]


def skip_reason(
    reminder: Reminder, incident: Incident, state: EscalationState, now: datetime
) -> str | None:
    """Why a due reminder must not fire now (None: fire it). Checked with the incident locked.

    A stale reminder exits quietly: one of an older plan, one for an acknowledged or
    resolved incident, one whose update was posted meanwhile, a review of a reopened one
    or of a drill.
    """
    if reminder.due_at > now:
        return "not due yet"
    if reminder.kind in REVIEWS:
        if incident.drill:  # planned before drills planned none
            return "a drill"
        return "reopened" if incident.is_open else None
    if not incident.is_open:
        return "resolved"
    if reminder.kind in (ReminderKind.PAGE, ReminderKind.ACK_BREACH, ReminderKind.RESOLVE_BREACH):
        if reminder.plan != state.plan:
            return "re-planned"
    if reminder.kind in ACK_BOUND and incident.acknowledged_at is not None:
        return "acknowledged"
    if reminder.kind == ReminderKind.UPDATE_DUE:
        due = incident.next_update_due
        if due is None:
            return "no update due"
        if due > reminder.due_at + _UPDATE_SLACK:
            return "updated since"
    return None


def next_update_reminder(
    reminder: Reminder, incident: Incident, policy: Policy, now: datetime
) -> PlannedReminder | None:
    """After an unanswered update reminder fires, the next one, a cadence later."""
    cadence = policy.response_times(incident.severity).update_every
    if cadence is None or cadence.is_zero or cadence.business_days:
        return None
    step = cadence.as_timedelta()
    due = reminder.due_at + step
    if due <= now:  # fired very late (the bot was down): count from now, never in a burst
        due = now + step
    return PlannedReminder(ReminderKind.UPDATE_DUE, due)
