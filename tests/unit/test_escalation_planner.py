"""The planning rules, as pure functions of (incident, policy, now)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from bot.escalation import planner
from bot.escalation.planner import (
    ACK_BOUND,
    OPEN_BOUND,
    REVIEWS,
    EscalationState,
    ReminderKind,
)
from bot.models import Incident, Severity, Status
from bot.reminders import Reminder, ReminderStatus
from tests.escalation_env import FRIDAY_2PM, matrix_policy

POLICY = matrix_policy()
T0 = FRIDAY_2PM
MIN = timedelta(minutes=1)
K = ReminderKind


def incident(severity: str = "P1", **changes: object) -> Incident:
    base = Incident(
        id="INC-20261127-001",
        title="Checkout down",
        severity=Severity(severity),
        status=Status.INVESTIGATING,
        declared_by="U0ALICE",
        declared_at=T0,
        updated_at=T0,
        roles={"commander": "U0ALICE"},
        next_update_due=T0 + POLICY.response_times(Severity(severity)).update_every.as_timedelta()
        if POLICY.response_times(Severity(severity)).update_every
        else None,
    )
    return base.evolve(**changes)


def planned(replan: planner.Replan) -> dict[tuple[ReminderKind, int], datetime]:
    return {(r.kind, r.level): r.due_at for r in replan.reminders}


def state(severity: str = "P1", **changes: object) -> EscalationState:
    return replace(
        EscalationState("INC-20261127-001", plan=1, severity=Severity(severity), anchor_at=T0),
        **changes,
    )


def test_declaration_plans_pages_targets_and_the_first_update() -> None:
    replan = planner.plan_declared(incident("P0"), POLICY)
    assert planned(replan) == {
        (K.PAGE, 1): T0,  # after: 0, notified at once
        (K.PAGE, 2): T0 + 30 * MIN,
        (K.PAGE, 3): T0 + 60 * MIN,
        (K.ACK_BREACH, 0): T0 + 15 * MIN,
        (K.RESOLVE_BREACH, 0): T0 + 2 * 60 * MIN,
        (K.UPDATE_DUE, 0): T0 + 30 * MIN,
    }
    assert replan.state == state("P0")
    assert [r.notify for r in replan.reminders if r.kind is K.PAGE] == [
        ("U0ONCALL",),
        ("U0ENGLEAD", "S0SRE"),
        ("U0VPENG",),
    ]


def test_p3_acknowledgement_is_one_business_day_across_the_weekend() -> None:
    friday_4pm = T0 + 120 * MIN
    p3 = incident("P3", declared_at=friday_4pm, next_update_due=None)
    due = planned(planner.plan_declared(p3, POLICY))
    assert due[(K.ACK_BREACH, 0)] == datetime(2026, 11, 30, 16, tzinfo=T0.tzinfo)  # Monday
    assert due[(K.RESOLVE_BREACH, 0)] == friday_4pm + timedelta(weeks=1)  # clock time
    assert (K.UPDATE_DUE, 0) not in due  # P3 has no update cadence


def test_acknowledging_cancels_only_pages_and_the_ack_target() -> None:
    acked = incident(acknowledged_at=T0 + 5 * MIN, acknowledged_by="U0BOB")
    replan = planner.plan_change("acknowledged", incident(), acked, POLICY, state(), T0)
    assert replan.cancel == ACK_BOUND == {K.PAGE, K.ACK_BREACH}
    assert replan.reminders == ()


def test_resolving_cancels_open_reminders_and_plans_the_reviews() -> None:
    resolved_at = T0 + 90 * MIN
    resolved = incident(status=Status.RESOLVED, resolved_at=resolved_at, next_update_due=None)
    replan = planner.plan_change("resolved", incident(), resolved, POLICY, state(), resolved_at)
    assert replan.cancel == OPEN_BOUND
    assert planned(replan) == {
        (K.PRELIMINARY_REVIEW, 0): resolved_at + timedelta(hours=24),
        (K.FORMAL_REVIEW, 0): resolved_at + timedelta(weeks=1),
    }


def test_a_resolved_drill_plans_no_reviews() -> None:
    """A drill's resolution planned the preliminary and formal review reminders, sent marked
    [DRILL] a day and a week later: a practice incident has no review to hold."""
    resolved_at = T0 + 90 * MIN
    drill = incident(drill=True)
    resolved = drill.evolve(status=Status.RESOLVED, resolved_at=resolved_at, next_update_due=None)
    replan = planner.plan_change("resolved", drill, resolved, POLICY, state(), resolved_at)
    assert replan.cancel == OPEN_BOUND
    assert planned(replan) == {}
    # One planned before this (still in the database) does not fire either.
    review = _reminder(K.FORMAL_REVIEW, resolved_at)
    assert planner.skip_reason(review, resolved, state(), resolved_at) == "a drill"


def test_reopening_starts_a_new_plan_from_the_reopening() -> None:
    reopened_at = T0 + 3 * 60 * MIN
    before = incident(status=Status.RESOLVED, resolved_at=T0 + 60 * MIN)
    after = incident(next_update_due=reopened_at + 60 * MIN)
    replan = planner.plan_change("reopened", before, after, POLICY, state(level=2), reopened_at)
    assert replan.cancel == OPEN_BOUND | REVIEWS
    assert replan.state == state(plan=2, anchor_at=reopened_at, level=0, started_by="reopened")
    assert planned(replan) == {
        (K.PAGE, 1): reopened_at,
        (K.PAGE, 2): reopened_at + 30 * MIN,
        (K.ACK_BREACH, 0): reopened_at + 30 * MIN,
        (K.RESOLVE_BREACH, 0): reopened_at + 4 * 60 * MIN,
        (K.UPDATE_DUE, 0): reopened_at + 60 * MIN,
    }


def test_upgrade_replans_from_the_declaration_without_paging_level_one_again() -> None:
    now = T0 + 40 * MIN
    p2 = incident("P2")
    p0 = p2.evolve(severity=Severity.P0, next_update_due=now + 30 * MIN)
    replan = planner.plan_change("severity_changed", p2, p0, POLICY, state("P2", level=1), now)
    assert replan.cancel == OPEN_BOUND
    assert replan.state == state("P0", plan=2, level=1)
    assert planned(replan) == {
        (K.PAGE, 2): T0 + 30 * MIN,  # already due: the service pages it at once
        (K.PAGE, 3): T0 + 60 * MIN,
        (K.ACK_BREACH, 0): T0 + 15 * MIN,  # already breached under P0: warned at once
        (K.RESOLVE_BREACH, 0): T0 + 2 * 60 * MIN,
        (K.UPDATE_DUE, 0): now + 30 * MIN,
    }


def test_severity_change_keeps_acknowledged_quiet_and_breaches_warned_once() -> None:
    now = T0 + 40 * MIN
    acked = incident("P1", acknowledged_at=T0 + 35 * MIN)
    breached = state("P1", level=1, ack_breached_at=T0 + 30 * MIN)
    p0 = acked.evolve(severity=Severity.P0, next_update_due=now + 30 * MIN)
    replan = planner.plan_change("severity_changed", acked, p0, POLICY, breached, now)
    kinds = {r.kind for r in replan.reminders}
    assert K.PAGE not in kinds and K.ACK_BREACH not in kinds
    assert kinds == {K.RESOLVE_BREACH, K.UPDATE_DUE}


def test_a_status_update_replans_only_the_update_reminder() -> None:
    later = incident(next_update_due=T0 + 150 * MIN)
    replan = planner.plan_change("updated", incident(), later, POLICY, state(), T0 + 90 * MIN)
    assert replan.cancel == {K.UPDATE_DUE}
    assert planned(replan) == {(K.UPDATE_DUE, 0): T0 + 150 * MIN}
    # A note moves nothing.
    assert planner.plan_change("noted", incident(), incident(), POLICY, state(), T0).is_empty


def _reminder(kind: ReminderKind, due: datetime, *, plan: int = 1, level: int = 0) -> Reminder:
    return Reminder(1, "INC-20261127-001", plan, kind, level, due, ReminderStatus.FIRING)


def test_skip_reasons_checked_when_firing() -> None:
    due = T0 + 30 * MIN
    page = _reminder(K.PAGE, due, level=2)
    assert planner.skip_reason(page, incident(), state(), due - timedelta(seconds=1)) == (
        "not due yet"
    )
    assert planner.skip_reason(page, incident(), state(), due) is None
    acked = incident(acknowledged_at=due - MIN)
    assert planner.skip_reason(page, acked, state(), due) == "acknowledged"
    assert planner.skip_reason(page, incident(), state(plan=2), due) == "re-planned"
    resolved = incident(status=Status.RESOLVED, resolved_at=due - MIN)
    assert planner.skip_reason(page, resolved, state(), due) == "resolved"
    review = _reminder(K.PRELIMINARY_REVIEW, due)
    assert planner.skip_reason(review, resolved, state(), due) is None
    assert planner.skip_reason(review, incident(), state(), due) == "reopened"
    update = _reminder(K.UPDATE_DUE, T0 + 60 * MIN)
    at = T0 + 60 * MIN
    assert planner.skip_reason(update, incident(), state(), at) is None
    moved = incident(next_update_due=T0 + 120 * MIN)
    assert planner.skip_reason(update, moved, state(), at) == "updated since"


def test_unanswered_update_reminder_repeats_at_the_cadence() -> None:
    update = _reminder(K.UPDATE_DUE, T0 + 60 * MIN)
    follow = planner.next_update_reminder(update, incident(), POLICY, T0 + 60 * MIN)
    assert follow is not None and follow.due_at == T0 + 120 * MIN
    # Fired very late (the bot was down for hours): the next one counts from now.
    late = planner.next_update_reminder(update, incident(), POLICY, T0 + 300 * MIN)
    assert late is not None and late.due_at == T0 + 360 * MIN
    assert planner.next_update_reminder(update, incident("P3"), POLICY, T0) is None


def test_next_level_for_manual_escalation() -> None:
    assert planner.next_level(POLICY, state("P0", level=1)) == (
        2,
        POLICY.levels(Severity.P0)[1],
    )
    assert planner.next_level(POLICY, state("P0", level=3)) is None
