"""The automatic-recovery planner on exact sightings: when it watches, restarts, gives up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.catalog import Service
from bot.remediation.recovery_plan import Health, Memory, Verdict, decide

T0 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
SHORT = Health("checkout", desired=3, ready=1)
LOOPING = Health("checkout", desired=3, ready=3, crashlooping=("checkout-abc",))
HEALTHY = Health("checkout", desired=3, ready=3)


def test_too_few_ready_is_watched_once_then_restarted() -> None:
    first = decide(SHORT, Memory(), 0, 3, T0)
    assert first.verdict is Verdict.WATCH
    assert first.memory == Memory(unhealthy_since=T0, failing_since=T0)
    second = decide(SHORT, first.memory, 0, 3, T0 + timedelta(minutes=1))
    assert second.verdict is Verdict.RESTART and second.memory == Memory()
    assert "restart 1 of 3" in second.reason


def test_a_rollout_in_progress_is_watched_and_counted_from_its_end() -> None:
    rolling = Health("checkout", desired=3, ready=2, rolling_out=True)
    memory = Memory(unhealthy_since=T0, failing_since=T0)
    for minutes in range(1, 5):
        waited = decide(rolling, memory, 0, 3, T0 + timedelta(minutes=minutes))
        assert waited.verdict is Verdict.WATCH, minutes
        memory = waited.memory
    assert memory == Memory() and "rollout in progress" in waited.reason
    # Rolled out, still short: a first sighting, as for any deployment.
    assert decide(SHORT, memory, 0, 3, T0).verdict is Verdict.WATCH
    # A crash loop during a rollout is acted on at once, as ever.
    looping = Health("checkout", desired=3, ready=2, crashlooping=("c-1",), rolling_out=True)
    assert decide(looping, Memory(), 0, 3, T0).verdict is Verdict.RESTART


def test_a_crash_loop_is_restarted_at_the_first_sighting() -> None:
    assert decide(LOOPING, Memory(), 0, 3, T0).verdict is Verdict.RESTART


def test_restarts_used_up_gives_up_once_and_then_stays_given_up() -> None:
    given_up = decide(LOOPING, Memory(), 3, 3, T0)
    assert given_up.verdict is Verdict.GIVE_UP and given_up.memory.gave_up_at == T0
    later = decide(SHORT, given_up.memory, 0, 3, T0 + timedelta(hours=2))
    assert later.verdict is Verdict.GIVEN_UP  # the window passed: still a human's now


def test_healthy_forgets_everything() -> None:
    remembered = Memory(unhealthy_since=T0, gave_up_at=T0)
    assert decide(HEALTHY, remembered, 3, 3, T0).memory == Memory()
    assert decide(HEALTHY, remembered, 3, 3, T0).verdict is Verdict.HEALTHY


def test_zero_max_restarts_pages_without_restarting() -> None:
    assert decide(LOOPING, Memory(), 0, 0, T0).verdict is Verdict.GIVE_UP


def test_the_catalog_refuses_recovery_without_deployments_and_business_days() -> None:
    with pytest.raises(ValueError, match=r"needs kubernetes\.deployments"):
        Service.model_validate({"auto_recovery": {"restart_unhealthy": True}})
    with pytest.raises(ValueError, match="clock duration"):
        Service.model_validate(
            {
                "kubernetes": {"deployments": ["checkout"]},
                "auto_recovery": {"restart_unhealthy": True, "window": "1bd"},
            }
        )
    entry = Service.model_validate(
        {
            "kubernetes": {"deployments": ["checkout"]},
            "auto_recovery": {"restart_unhealthy": True, "window": "2h", "check_every": 30},
        }
    )
    assert entry.auto_recovery.window.seconds == 7200
    assert entry.auto_recovery.check_every.seconds == 30
    assert entry.auto_recovery.max_restarts == 3


def test_pods_waiting_for_a_node_are_never_restarted_and_paged_past_the_window() -> None:
    scaling = Health(
        "checkout", desired=3, ready=1, waiting_for_node=("c-1", "c-2"), scheduler_message="0/3"
    )
    memory = Memory()
    for minutes in (0, 1, 30, 60):
        waited = decide(scaling, memory, 0, 3, T0 + timedelta(minutes=minutes))
        assert waited.verdict is Verdict.NO_NODE, minutes
        memory = waited.memory
    assert memory == Memory(unhealthy_since=T0, waiting_since=T0)
    assert "2 pods waiting for a node: Unschedulable: 0/3" in waited.reason
    given_up = decide(scaling, memory, 0, 3, T0 + timedelta(minutes=61))
    assert given_up.verdict is Verdict.GIVE_UP and given_up.no_node
    # Restarts left or not, a restart is never the answer to a missing node.
    assert decide(scaling, Memory(), 0, 0, T0).verdict is Verdict.NO_NODE

    # Another pod failing beside them, or too few pods even once placed: a failure as ever.
    failing = Health("checkout", desired=3, ready=1, waiting_for_node=("c-1",), failing=1)
    assert decide(failing, Memory(), 0, 3, T0).verdict is Verdict.WATCH
    short = Health("checkout", desired=4, ready=1, waiting_for_node=("c-1", "c-2"))
    assert decide(short, Memory(), 0, 3, T0).verdict is Verdict.WATCH
    # Placed, then failing: a first sighting of a failure (the new pods get one check), on
    # the same clock of unhealthiness.
    placed = decide(SHORT, memory, 0, 3, T0 + timedelta(minutes=61))
    assert placed.verdict is Verdict.WATCH
    assert placed.memory == Memory(
        unhealthy_since=T0, waiting_since=T0, failing_since=T0 + timedelta(minutes=61)
    )


def test_flapping_between_waiting_for_a_node_and_failing_keeps_one_clock() -> None:
    # Pods flapping between Pending as Unschedulable and starting but not ready restarted the
    # wait at each change of kind: no page ever (nor a restart: never two failing in a row).
    scaling = Health("checkout", desired=3, ready=1, waiting_for_node=("c-1", "c-2"))
    memory = Memory()
    for minutes in (0, 20, 40, 60):
        health = scaling if minutes % 40 == 0 else SHORT
        decided = decide(health, memory, 0, 3, T0 + timedelta(minutes=minutes))
        assert decided.verdict is (Verdict.NO_NODE if health is scaling else Verdict.WATCH)
        memory = decided.memory
    assert memory.unhealthy_since == T0
    given_up = decide(scaling, memory, 0, 3, T0 + timedelta(minutes=65))
    assert given_up.verdict is Verdict.GIVE_UP and given_up.no_node
    assert "unhealthy for 1 h 5 min" in given_up.reason
    # Failing twice in a row is a failure as ever: restarted, and the clock starts again.
    failing = decide(SHORT, memory, 0, 3, T0 + timedelta(minutes=61))  # after 60's, failing
    assert failing.verdict is Verdict.RESTART and failing.memory == Memory()


def test_a_paused_deployment_is_never_restarted_and_given_up_after_the_window() -> None:
    paused = Health(
        "checkout", desired=3, ready=1, crashlooping=("c-1",), rolling_out=False, paused=True
    )
    first = decide(paused, Memory(), 0, 3, T0)
    assert first.verdict is Verdict.PAUSED and first.paused
    assert first.memory == Memory(unhealthy_since=T0, paused_since=T0)
    later = decide(paused, first.memory, 0, 3, T0 + timedelta(minutes=60))
    assert later.verdict is Verdict.PAUSED
    given_up = decide(paused, later.memory, 0, 3, T0 + timedelta(minutes=61))
    assert given_up.verdict is Verdict.GIVE_UP and given_up.paused and not given_up.no_node
    assert "not restarted (it rolls nothing out while paused)" in given_up.reason
    # Paused and healthy (a canary held on purpose): left alone.
    assert decide(HEALTHY, Memory(), 0, 3, T0).verdict is Verdict.HEALTHY


def test_a_crash_loop_beside_pods_waiting_for_a_node_replaces_only_the_looping_pods() -> None:
    mixed = Health(
        "checkout", desired=3, ready=1, crashlooping=("c-x",), waiting_for_node=("c-1",), failing=1
    )
    first = decide(mixed, Memory(), 0, 2, T0)
    assert first.verdict is Verdict.REPLACE_PODS  # at once, as a crash loop
    assert "replacing only the crash-looping pod c-x" in first.reason
    # The wait for a node goes on, on its clock: a replacement is no fresh start for it; but
    # it is said again (with its page) once the crash loop is gone, as after a restart.
    assert first.memory == Memory(unhealthy_since=T0)
    later = decide(mixed, first.memory, 1, 2, T0 + timedelta(minutes=1))
    assert later.verdict is Verdict.REPLACE_PODS and later.memory.unhealthy_since == T0
    given_up = decide(mixed, later.memory, 2, 2, T0 + timedelta(minutes=2))
    assert given_up.verdict is Verdict.GIVE_UP and not given_up.no_node
    # Alone, a crash loop is still a restart of the deployment.
    assert decide(LOOPING, Memory(), 0, 2, T0).verdict is Verdict.RESTART


def test_a_crash_loop_killed_at_its_memory_limit_is_given_up_at_once() -> None:
    oom = Health("checkout", desired=3, ready=2, crashlooping=("c-x",), oom_killed=("c-x",))
    given_up = decide(oom, Memory(), 0, 3, T0)
    assert given_up.verdict is Verdict.GIVE_UP and given_up.oom
    assert "not restarted (a restart only repeats the kill" in given_up.reason
    # Beside pods waiting for a node too: no replacement either, the same kill.
    mixed = Health(
        "checkout",
        desired=3,
        ready=1,
        crashlooping=("c-x",),
        oom_killed=("c-x",),
        waiting_for_node=("c-1",),
    )
    assert decide(mixed, Memory(), 0, 3, T0).verdict is Verdict.GIVE_UP
