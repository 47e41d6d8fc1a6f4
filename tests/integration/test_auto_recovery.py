"""Automatic recovery on the fake Kubernetes API server, with a fake clock: an unhealthy
deployment restarted at most `max_restarts` times, then an incident declared and a human
paged, nothing more restarted; a healthy one left alone; two processes on one PostgreSQL
restart once; the counts survive a restart of the bot."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.incidents.schemas import DeclareIncident
from bot.models import Actor, Incident
from bot.policy import Policy, parse_policy
from bot.remediation import recovery_storage
from bot.remediation.recovery_plan import Verdict
from tests.escalation_env import FRIDAY_2PM, MATRIX_POLICY, Env, start_env, stop_env
from tests.fake_kubernetes import FakeKubernetes, deployment, pod

RECOVERY = """
services:
  checkout:
    kubernetes: {context: test, namespace: shop, deployments: [checkout, cart]}
    auto_recovery: {restart_unhealthy: true, max_restarts: 2, window: 1h, check_every: 1m}
"""
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def recovery_policy() -> Policy:
    return parse_policy(MATRIX_POLICY + RECOVERY, source="<recovery policy>")


def _restarts(fake: FakeKubernetes, name: str) -> int:
    path = f"/apis/apps/v1/namespaces/shop/deployments/{name}"
    return sum(1 for r in fake.requests if r.method == "PATCH" and r.path == path)


def _cluster(fake: FakeKubernetes) -> None:
    fake.state.add(deployment("checkout", namespace="shop", replicas=3, ready=1))
    fake.state.add(deployment("cart", namespace="shop", replicas=2, ready=2))


@pytest.fixture(params=["sqlite", "postgres"])
async def env(
    request: pytest.FixtureRequest, tmp_path: Path, fake_kubernetes: FakeKubernetes
) -> AsyncIterator[Env]:
    """The bot on either store: what recovery remembers is stored, so both must keep it."""
    _cluster(fake_kubernetes)
    url = (
        f"sqlite:///{tmp_path}/recovery.db"
        if request.param == "sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    started = await start_env(url, policy=recovery_policy())
    yield started
    await stop_env(started)


async def _checkout_errors(env: Env) -> Incident:
    """A P1 "Checkout errors" declared by Alice for the service checkout."""
    return await env.services.incidents.declare(
        DeclareIncident(severity="P1", title="Checkout errors", services=("checkout",)),
        Actor("U0ALICE", "alice"),
    )


async def _check(env: Env, **delta: float) -> dict[str, Verdict]:
    env.clock.advance(**delta)
    results = await env.services.recovery.check_due()
    await env.services.reminders.fire_due()
    await env.deliver()
    return {d: dec.verdict for r in results for d, dec in r.decisions.items()}


async def test_restarts_at_most_max_restarts_then_declares_and_pages(
    env: Env, fake_kubernetes: FakeKubernetes
) -> None:
    fake = fake_kubernetes
    assert await _check(env) == {"checkout": Verdict.WATCH, "cart": Verdict.HEALTHY}
    assert _restarts(fake, "checkout") == 0  # one sighting is not enough
    assert await _check(env, seconds=30) == {}  # not due yet: nothing read, nothing done

    assert (await _check(env, seconds=30))["checkout"] is Verdict.RESTART
    assert _restarts(fake, "checkout") == 1
    template = fake.state.deployments[("shop", "checkout")]["spec"]["template"]
    assert RESTARTED_AT in template["metadata"]["annotations"]
    assert (await _check(env, minutes=1))["checkout"] is Verdict.WATCH  # the new pods' check
    assert (await _check(env, minutes=1))["checkout"] is Verdict.RESTART
    assert _restarts(fake, "checkout") == 2
    assert await env.services.incidents.list() == []

    assert (await _check(env, minutes=1))["checkout"] is Verdict.WATCH
    assert (await _check(env, minutes=1))["checkout"] is Verdict.GIVE_UP
    [incident] = await env.services.incidents.list()
    assert incident.services == ("checkout",) and incident.severity == "P2"
    assert "checkout" in incident.title and "2 automatic restarts" in incident.title
    # The P2's first escalation level is paged: a human now.
    assert env.dms("").get("U0ONCALL", 0) >= 1
    assert "declared" in await env.timeline_kinds(incident)

    for _ in range(3):
        assert (await _check(env, minutes=1))["checkout"] is Verdict.GIVEN_UP
    assert _restarts(fake, "checkout") == 2 and _restarts(fake, "cart") == 0
    assert len(await env.services.incidents.list()) == 1

    actions = [
        (e.action, e.outcome)
        async for e in env.services.audit.entries()
        if e.action.startswith("auto_recovery.")
    ]
    assert actions == [
        ("auto_recovery.restart", "ok"),
        ("auto_recovery.outcome", "ok"),
        ("auto_recovery.restart", "ok"),
        ("auto_recovery.outcome", "ok"),
    ]

    # Healthy again: forgotten, so a later failure may be restarted again (outside the window).
    fake.state.deployments[("shop", "checkout")]["status"]["readyReplicas"] = 3
    assert (await _check(env, minutes=1))["checkout"] is Verdict.HEALTHY


async def test_giving_up_during_a_drill_of_the_service_declares_a_real_incident(
    env: Env, fake_kubernetes: FakeKubernetes
) -> None:
    """A drill naming the service is practice: the restarts never go on its timeline, and
    giving up pages a human on a real incident, not as an escalation of the drill."""
    drill = await env.services.incidents.declare(
        DeclareIncident(
            severity="P1", title="database failover", services=("checkout",), drill=True
        ),
        Actor("U0ALICE", "alice"),
    )
    assert (await _check(env))["checkout"] is Verdict.WATCH
    assert (await _check(env, minutes=1))["checkout"] is Verdict.RESTART
    assert (await _check(env, minutes=1))["checkout"] is Verdict.WATCH
    assert (await _check(env, minutes=1))["checkout"] is Verdict.RESTART
    assert (await _check(env, minutes=1))["checkout"] is Verdict.WATCH
    assert (await _check(env, minutes=1))["checkout"] is Verdict.GIVE_UP
    [real] = (await env.services.incidents.list_page()).incidents  # drills are apart
    assert not real.drill and "2 automatic restarts" in real.title
    kinds = await env.timeline_kinds(drill)
    assert not [k for k in kinds if k.startswith("auto_recovery") or k == "escalated"], kinds


async def test_a_crash_loop_is_restarted_at_once_and_on_the_open_incidents_timeline(
    env: Env, fake_kubernetes: FakeKubernetes
) -> None:
    fake = fake_kubernetes
    fake.state.deployments[("shop", "checkout")]["status"]["readyReplicas"] = 3
    owner = fake.state.replica_set_of("shop", "checkout")  # its pods, by ownerReference
    fake.state.add(pod("checkout-7d9-abc", namespace="shop", owner=owner))
    fake.state.add(
        pod(
            "checkout-7d9-xyz",
            namespace="shop",
            owner=owner,
            ready=False,
            restarts=7,
            waiting_reason="CrashLoopBackOff",
        )
    )
    incident = await _checkout_errors(env)
    assert (await _check(env))["checkout"] is Verdict.RESTART
    assert _restarts(fake, "checkout") == 1
    kinds = await env.timeline_kinds(incident)
    assert "auto_recovery_restart" in kinds and "auto_recovery_outcome" in kinds
    timeline = await env.services.incidents.timeline(incident.id)
    assert any("restarted deployment checkout" in e.text for e in timeline)

    # Used up (max 2): the open incident is escalated, no second incident is declared.
    assert (await _check(env, minutes=1))["checkout"] is Verdict.RESTART
    assert (await _check(env, minutes=1))["checkout"] is Verdict.GIVE_UP
    assert [i.id for i in await env.services.incidents.list()] == [incident.id]
    assert (await env.timeline_kinds(incident)).count("paged") == 2  # level 1, then level 2
    timeline = await env.services.incidents.timeline(incident.id)
    assert any("automatic recovery stopped after 2 restarts" in e.text for e in timeline)
    assert env.dms("").get("U0ENGLEAD", 0) >= 1  # P1's second level, paged now
    assert _restarts(fake, "checkout") == 2
    # The report lists the bot's restarts as the bot's, not a handle nobody has.
    _, text = await env.services.reports.report_markdown(incident.id)
    runs = text.split("## Remediation runs", 1)[1]
    assert runs.count("automatic recovery) on checkout/checkout, requested by the bot,") == 2
    assert "@chatops-bot" not in text


async def test_two_processes_restart_once_and_counts_survive_a_restart(
    postgres_url: str, fake_kubernetes: FakeKubernetes
) -> None:
    fake = fake_kubernetes
    _cluster(fake)
    clock = FakeClock(FRIDAY_2PM)
    first = await start_env(postgres_url, policy=recovery_policy(), clock=clock)
    second = await start_env(postgres_url, policy=recovery_policy(), clock=clock)
    try:
        assert first.services.recovery.owner != second.services.recovery.owner
        for step in range(4):
            clock.advance(minutes=1 if step else 0)
            both = await asyncio.gather(
                first.services.recovery.check_due(), second.services.recovery.check_due()
            )
            assert sum(len(results) for results in both) == 1  # one process checked
        assert _restarts(fake, "checkout") == 2 and _restarts(fake, "cart") == 0
        async with first.services.store.transaction() as tx:
            made = await recovery_storage.restarts(tx, "checkout")
        assert [(r["deployment"], r["status"]) for r in made] == [
            ("checkout", "succeeded"),
            ("checkout", "succeeded"),
        ]
    finally:
        await stop_env(first)
    # The first process is gone; the second, alone, goes on from the stored counts.
    try:
        clock.advance(minutes=1)
        await second.services.recovery.check_due()
        clock.advance(minutes=1)
        [result] = await second.services.recovery.check_due()
        assert result.decisions["checkout"].verdict is Verdict.GIVE_UP
        assert result.paged_incident is not None
        assert _restarts(fake, "checkout") == 2
    finally:
        await stop_env(second)


async def test_a_rollout_in_progress_is_waited_for_not_restarted_until_kubernetes_gives_up(
    env: Env, fake_kubernetes: FakeKubernetes
) -> None:
    # A deploy of checkout that took longer than two checks (1 of 3 pods updated, 2 ready, as
    # a rolling update with maxUnavailable runs) was restarted by the bot on top of it, again
    # after each check, and then an incident was declared for a deploy going well.
    fake = fake_kubernetes
    status = fake.state.deployments[("shop", "checkout")]["status"]
    status.update(readyReplicas=2, updatedReplicas=1)
    status["conditions"] = [
        {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}
    ]
    for minutes in (0, 1, 1, 1):
        assert (await _check(env, minutes=minutes))["checkout"] is Verdict.WATCH
    assert _restarts(fake, "checkout") == 0
    assert await env.services.incidents.list() == []

    # Stuck past its progressDeadlineSeconds, as Kubernetes says: unhealthy like any other.
    status["conditions"] = [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
    ]
    assert (await _check(env, minutes=1))["checkout"] is Verdict.WATCH
    assert (await _check(env, minutes=1))["checkout"] is Verdict.RESTART
    assert _restarts(fake, "checkout") == 1


async def test_a_restart_kubernetes_never_answered_is_of_unknown_outcome_not_failed(
    tmp_path: Path, fake_kubernetes: FakeKubernetes
) -> None:
    # The restart's PATCH went out and the API server did not answer within the entry's
    # timeout: the timeline said "could not restart", and whoever read it restarted by hand.
    _cluster(fake_kubernetes)
    fake_kubernetes.state.deployments[("shop", "cart")]["status"]["readyReplicas"] = 1
    policy = parse_policy(
        MATRIX_POLICY
        + RECOVERY.replace("deployments: [checkout, cart]}", "deployments: [cart], timeout: 1}"),
        source="<recovery policy>",
    )
    env = await start_env(f"sqlite:///{tmp_path}/recovery.db", policy=policy)
    try:
        incident = await env.services.incidents.declare(
            DeclareIncident(severity="P1", title="Cart errors", services=("checkout",)),
            Actor("U0ALICE", "alice"),
        )
        fake_kubernetes.hang_paths.add("PATCH /apis/apps/v1/namespaces/shop/deployments/cart")
        assert (await _check(env))["cart"] is Verdict.WATCH
        assert (await _check(env, minutes=1))["cart"] is Verdict.RESTART
        timeline = [e.text for e in await env.services.incidents.timeline(incident.id)]
        [done] = [
            t for t in timeline if t.startswith("Automatic recovery") and "restarting" not in t
        ]
        assert "may or may not have restarted deployment cart" in done, done
        assert "could not restart" not in done
        outcomes = [
            o for a, _, o in await env.audit_actions(incident) if a == "auto_recovery.outcome"
        ]
        assert outcomes == ["unknown"]
    finally:
        await stop_env(env)


NO_ROOM = "0/3 nodes are available: 3 Insufficient cpu."


def _scaling_out(fake: FakeKubernetes) -> None:
    """checkout scaled out to 3: one pod ready, two Pending until the autoscaler adds a node."""
    owner = fake.state.replica_set_of("shop", "checkout")
    fake.state.add(pod("checkout-7d9-abc", namespace="shop", owner=owner))
    for name in ("checkout-7d9-new1", "checkout-7d9-new2"):
        fake.state.add(pod(name, namespace="shop", owner=owner, unschedulable=NO_ROOM))


async def test_pods_waiting_for_a_node_are_never_restarted_and_said_once_with_the_cause(
    env: Env, fake_kubernetes: FakeKubernetes
) -> None:
    # A scale-out waiting minutes on the cluster autoscaler (1 of 3 ready, the rest Pending
    # as Unschedulable) was restarted at the second check, under load, and again after.
    fake = fake_kubernetes
    _scaling_out(fake)
    incident = await env.services.incidents.declare(
        DeclareIncident(severity="P2", title="Checkout slow", services=("checkout",)),
        Actor("U0ALICE", "alice"),
    )
    for minutes in (0, 1, 1, 10, 30):
        assert (await _check(env, minutes=minutes))["checkout"] is Verdict.NO_NODE
    assert _restarts(fake, "checkout") == 0
    timeline = [e.text for e in await env.services.incidents.timeline(incident.id)]
    said = [t for t in timeline if t.startswith("Automatic recovery")]
    assert said == [
        "Automatic recovery: not restarting deployment checkout of checkout: 2 pods waiting"
        f" for a node: Unschedulable: {NO_ROOM}; a restart cannot make room (a human is paged"
        " if it lasts over 1 h)"
    ]

    # A node came and the new pods run, but one is not ready: a failure, counted afresh.
    owner = fake.state.replica_set_of("shop", "checkout")
    fake.state.add(pod("checkout-7d9-new1", namespace="shop", owner=owner))
    fake.state.add(pod("checkout-7d9-new2", namespace="shop", owner=owner, ready=False))
    fake.state.deployments[("shop", "checkout")]["status"]["readyReplicas"] = 2
    assert (await _check(env, minutes=1))["checkout"] is Verdict.WATCH
    assert (await _check(env, minutes=1))["checkout"] is Verdict.RESTART
    assert _restarts(fake, "checkout") == 1


async def test_pods_waiting_for_a_node_past_the_window_page_a_human_without_a_restart(
    env: Env, fake_kubernetes: FakeKubernetes
) -> None:
    fake = fake_kubernetes
    _scaling_out(fake)
    assert (await _check(env))["checkout"] is Verdict.NO_NODE
    assert (await _check(env, minutes=59))["checkout"] is Verdict.NO_NODE
    assert await env.services.incidents.list() == []
    assert (await _check(env, minutes=2))["checkout"] is Verdict.GIVE_UP  # 61 min > 1 h
    [incident] = await env.services.incidents.list()
    assert incident.title == "checkout: checkout waiting for a node for over 1 h"
    assert f"2 pods waiting for a node: Unschedulable: {NO_ROOM}" in incident.impact
    assert "unhealthy for 1 h 1 min; not restarted" in incident.impact
    assert env.dms("").get("U0ONCALL", 0) >= 1  # a human, told why
    for _ in range(2):
        assert (await _check(env, minutes=1))["checkout"] is Verdict.GIVEN_UP
    assert _restarts(fake, "checkout") == 0
    assert len(await env.services.incidents.list()) == 1


async def test_pods_flapping_between_waiting_for_a_node_and_failing_page_after_the_window(
    env: Env, fake_kubernetes: FakeKubernetes
) -> None:
    # A pod that got a node, failed to start, was evicted and waited for a node again: each
    # change of kind restarted the wait, so recovery neither restarted (never failing at two
    # checks in a row) nor paged (never waiting a whole window in a row).
    fake = fake_kubernetes
    _scaling_out(fake)
    owner = fake.state.replica_set_of("shop", "checkout")
    waiting = fake.state.pods[("shop", "checkout-7d9-new1")]
    starting = pod("checkout-7d9-new1", namespace="shop", owner=owner, ready=False)
    for minutes, now, verdict in (
        (0, waiting, Verdict.NO_NODE),
        (20, starting, Verdict.WATCH),
        (20, waiting, Verdict.NO_NODE),
        (20, starting, Verdict.WATCH),
    ):
        fake.state.pods[("shop", "checkout-7d9-new1")] = now
        assert (await _check(env, minutes=minutes))["checkout"] is verdict, minutes
    assert await env.services.incidents.list() == []
    fake.state.pods[("shop", "checkout-7d9-new1")] = waiting
    assert (await _check(env, minutes=5))["checkout"] is Verdict.GIVE_UP  # unhealthy 65 min
    [incident] = await env.services.incidents.list()
    assert "unhealthy for 1 h 5 min; not restarted" in incident.impact
    assert env.dms("").get("U0ONCALL", 0) >= 1
    assert _restarts(fake, "checkout") == 0


async def test_a_paused_deployment_is_never_restarted_and_a_human_paged_after_the_window(
    env: Env, fake_kubernetes: FakeKubernetes
) -> None:
    # A rollout paused part way (kubectl rollout pause: 1 of 3 updated, 1 ready) read as a
    # rollout in progress for ever: Kubernetes never marks a paused one stalled, so the bot
    # waited, said nothing and paged nobody.
    fake = fake_kubernetes
    checkout = fake.state.deployments[("shop", "checkout")]
    checkout["spec"]["paused"] = True
    checkout["status"].update(readyReplicas=1, updatedReplicas=1)
    checkout["status"]["conditions"] = [
        {"type": "Progressing", "status": "Unknown", "reason": "DeploymentPaused"}
    ]
    for minutes in (0, 1, 30, 29):
        assert (await _check(env, minutes=minutes))["checkout"] is Verdict.PAUSED, minutes
    said = [e async for e in env.services.audit.entries() if e.action == "auto_recovery.paused"]
    assert len(said) == 1  # once, not at every check
    assert await env.services.incidents.list() == []
    assert (await _check(env, minutes=2))["checkout"] is Verdict.GIVE_UP  # 62 min > 1 h
    [incident] = await env.services.incidents.list()
    assert incident.title == "checkout: checkout paused and unhealthy for over 1 h"
    assert "paused (kubectl rollout resume to go on), unhealthy for 1 h 2 min" in incident.impact
    assert env.dms("").get("U0ONCALL", 0) >= 1  # a human, told why
    assert (await _check(env, minutes=1))["checkout"] is Verdict.GIVEN_UP
    assert _restarts(fake, "checkout") == 0


def _deleted(fake: FakeKubernetes) -> list[str]:
    return [
        r.path.rsplit("/", 1)[1]
        for r in fake.requests
        if r.method == "DELETE" and "/pods/" in r.path
    ]


def _crash_loop_beside_a_pod_waiting_for_a_node(fake: FakeKubernetes) -> Callable[[], None]:
    """checkout scaled out to 3 with no room: one pod ready, one waiting for a node; the
    function returned adds its third pod, crash-looping (again, as the replica set's new one)."""
    owner = fake.state.replica_set_of("shop", "checkout")
    fake.state.add(pod("checkout-7d9-abc", namespace="shop", owner=owner))
    fake.state.add(pod("checkout-7d9-new1", namespace="shop", owner=owner, unschedulable=NO_ROOM))

    def crash_loop() -> None:
        fake.state.add(
            pod(
                "checkout-7d9-xyz",
                namespace="shop",
                owner=owner,
                ready=False,
                restarts=7,
                waiting_reason="CrashLoopBackOff",
            )
        )

    return crash_loop


async def test_a_crash_loop_beside_pods_waiting_for_a_node_replaces_only_that_pod(
    env: Env, fake_kubernetes: FakeKubernetes
) -> None:
    # checkout scaled out to 3 with no room (one pod ready, one waiting for a node) and its
    # other pod crash-looping: the bot restarted the whole deployment at once, replacing the
    # ready pod too with one needing a node, under load; and again, and again.
    fake = fake_kubernetes
    crash_loop = _crash_loop_beside_a_pod_waiting_for_a_node(fake)
    crash_loop()
    incident = await _checkout_errors(env)
    assert (await _check(env))["checkout"] is Verdict.REPLACE_PODS  # at once, as a crash loop
    assert _deleted(fake) == ["checkout-7d9-xyz"] and _restarts(fake, "checkout") == 0
    assert ("shop", "checkout-7d9-abc") in fake.state.pods  # the ready pod left alone
    timeline = [e.text for e in await env.services.incidents.timeline(incident.id)]
    assert any(
        t.startswith("Automatic recovery: replacing pod checkout-7d9-xyz of deployment checkout")
        and "not restarting the deployment" in t
        for t in timeline
    ), timeline
    assert any(
        t.startswith("Automatic recovery replaced pod checkout-7d9-xyz of deployment checkout")
        for t in timeline
    ), timeline

    crash_loop()
    assert (await _check(env, minutes=1))["checkout"] is Verdict.REPLACE_PODS
    crash_loop()
    assert (await _check(env, minutes=1))["checkout"] is Verdict.GIVE_UP  # 2 of 2 used
    assert _deleted(fake) == ["checkout-7d9-xyz"] * 2 and _restarts(fake, "checkout") == 0
    assert (await env.timeline_kinds(incident)).count("paged") == 2  # level 1, then level 2
    timeline = [e.text for e in await env.services.incidents.timeline(incident.id)]
    assert any("after 2 replacements of its crash-looping pods" in t for t in timeline)
    _, text = await env.services.reports.report_markdown(incident.id)
    runs = text.split("## Remediation runs", 1)[1]
    assert runs.count("kubernetes.delete_pod (automatic recovery)") == 2, runs


async def test_after_a_pod_replacement_the_wait_for_a_node_is_said_with_its_page(
    env: Env, fake_kubernetes: FakeKubernetes
) -> None:
    # The crash-looping pod replaced, the deployment was left waiting for a node, to be paged
    # about after the window; but the line that says so ("a human is paged if it lasts")
    # was never written after a replacement (it was after a restart), so the timeline ended
    # on "replaced pod ..." as if nothing more would happen.
    fake = fake_kubernetes
    crash_loop = _crash_loop_beside_a_pod_waiting_for_a_node(fake)
    crash_loop()
    incident = await _checkout_errors(env)
    assert (await _check(env))["checkout"] is Verdict.REPLACE_PODS
    # Its replica set's new pod took the room the crash-looping one held, and runs.
    owner = fake.state.replica_set_of("shop", "checkout")
    fake.state.add(pod("checkout-7d9-fresh", namespace="shop", owner=owner))
    fake.state.deployments[("shop", "checkout")]["status"]["readyReplicas"] = 2
    for minutes in (1, 1, 10):
        assert (await _check(env, minutes=minutes))["checkout"] is Verdict.NO_NODE
    timeline = [e.text for e in await env.services.incidents.timeline(incident.id)]
    said = [t for t in timeline if t.startswith("Automatic recovery")]
    assert said[-1] == (
        "Automatic recovery: not restarting deployment checkout of checkout: 1 pod waiting"
        f" for a node: Unschedulable: {NO_ROOM}; a restart cannot make room (a human is paged"
        " if it lasts over 1 h)"
    ), said
    waits = [t for t in said if "cannot make room (a human is paged" in t]
    assert len(waits) == 1  # once per wait
    assert (await _check(env, minutes=50))["checkout"] is Verdict.GIVE_UP  # and it is
    assert (await env.timeline_kinds(incident)).count("paged") == 2  # level 1, then level 2


async def test_a_crash_loop_killed_at_its_memory_limit_pages_at_once_without_a_restart(
    env: Env, fake_kubernetes: FakeKubernetes
) -> None:
    # /diagnose offers no Restart for an OOMKilled crash loop (a restart only repeats the
    # kill), yet automatic recovery restarted it max_restarts times before calling anyone.
    fake = fake_kubernetes
    fake.state.deployments[("shop", "checkout")]["status"]["readyReplicas"] = 2
    owner = fake.state.replica_set_of("shop", "checkout")
    fake.state.add(pod("checkout-7d9-abc", namespace="shop", owner=owner))
    fake.state.add(
        pod(
            "checkout-7d9-xyz",
            namespace="shop",
            owner=owner,
            ready=False,
            restarts=7,
            waiting_reason="CrashLoopBackOff",
            last_exit_code=137,
            last_reason="OOMKilled",
            limits={"memory": "256Mi"},
        )
    )
    assert (await _check(env))["checkout"] is Verdict.GIVE_UP
    [incident] = await env.services.incidents.list()
    assert incident.title == "checkout: checkout killed at its memory limit (OOMKilled)"
    assert "checkout-7d9-xyz OOMKilled at its memory limit: not restarted" in incident.impact
    assert env.dms("").get("U0ONCALL", 0) >= 1
    assert (await _check(env, minutes=1))["checkout"] is Verdict.GIVEN_UP
    assert _restarts(fake, "checkout") == 0 and _deleted(fake) == []


async def _give_up_on_an_oom_kill_and_on_restarts_at_one_check(
    env: Env, fake: FakeKubernetes
) -> None:
    """cart crash-looping, restarted twice (all it may), and checkout killed at its memory
    limit: both given up at the same check, one page."""
    fake.state.deployments[("shop", "checkout")]["status"]["readyReplicas"] = 3
    fake.state.deployments[("shop", "cart")]["status"]["readyReplicas"] = 1
    looping = {"ready": False, "restarts": 7, "waiting_reason": "CrashLoopBackOff"}
    fake.state.add(pod("cart-5f4-xyz", namespace="shop", owner=_set(fake, "cart"), **looping))
    assert (await _check(env))["cart"] is Verdict.RESTART
    assert (await _check(env, minutes=1))["cart"] is Verdict.RESTART
    fake.state.deployments[("shop", "checkout")]["status"]["readyReplicas"] = 2
    fake.state.add(
        pod(
            "checkout-7d9-oom",
            namespace="shop",
            owner=_set(fake, "checkout"),
            last_exit_code=137,
            last_reason="OOMKilled",
            **looping,
        )
    )
    assert await _check(env, minutes=1) == {"checkout": Verdict.GIVE_UP, "cart": Verdict.GIVE_UP}


def _set(fake: FakeKubernetes, name: str) -> dict[str, object]:
    return fake.state.replica_set_of("shop", name)


async def test_one_page_for_an_oom_kill_and_spent_restarts_says_why_of_each(
    env: Env, fake_kubernetes: FakeKubernetes
) -> None:
    # Given up at one check on checkout, killed at its memory limit (never restarted), and on
    # cart, out of restarts: the page said "stopped after 2 restarts" of both, and the
    # incident "checkout, cart unhealthy after 2 automatic restarts": whoever was paged
    # looked for two restarts of checkout that were never made, not at its memory limit.
    await _give_up_on_an_oom_kill_and_on_restarts_at_one_check(env, fake_kubernetes)
    [incident] = await env.services.incidents.list()
    assert incident.title == (
        "checkout: checkout killed at its memory limit (OOMKilled); cart unhealthy after 2"
        " automatic restarts"
    )
    assert env.dms("").get("U0ONCALL", 0) >= 1


async def test_escalating_for_an_oom_kill_and_spent_restarts_says_why_of_each(
    env: Env, fake_kubernetes: FakeKubernetes
) -> None:
    incident = await _checkout_errors(env)
    await _give_up_on_an_oom_kill_and_on_restarts_at_one_check(env, fake_kubernetes)
    [paged] = [
        e.text
        for e in await env.services.incidents.timeline(incident.id)
        if "automatic recovery stopped" in e.text
    ]
    assert (
        "automatic recovery stopped: killed at the memory limit (OOMKilled), which a restart"
        " only repeats: deployment checkout: " in paged
    ), paged
    assert "; after 2 restarts in 1 h: deployment cart: " in paged, paged
    assert "stopped after 2 restarts" not in paged


async def _remember_as_the_previous_version(env: Env, **stored: float | None) -> None:
    """Overwrite checkout's memory as the version before this one stored it: its three keys
    only (no failing_since, no paused_since)."""
    item = {key: stored.get(key) for key in ("unhealthy_since", "gave_up_at", "waiting_since")}
    async with env.services.store.transaction() as tx:
        await tx.execute(
            "UPDATE auto_recovery_checks SET memory = ? WHERE service = ?",
            (json.dumps({"checkout": item}), "checkout"),
        )


async def test_a_wait_for_a_node_remembered_by_the_previous_version_keeps_its_clock(
    env: Env, fake_kubernetes: FakeKubernetes
) -> None:
    # The version before counted a wait for a node from `waiting_since` alone (its
    # `unhealthy_since` was empty then). Upgraded 50 minutes into the wait, the bot read that
    # memory as a first sighting and started the window again: the human due at 60 minutes
    # was paged at 110.
    _scaling_out(fake_kubernetes)
    assert (await _check(env))["checkout"] is Verdict.NO_NODE
    await _remember_as_the_previous_version(env, waiting_since=env.clock.now().timestamp())
    assert (await _check(env, minutes=50))["checkout"] is Verdict.NO_NODE
    assert (await _check(env, minutes=11))["checkout"] is Verdict.GIVE_UP  # 61 min > 1 h
    [incident] = await env.services.incidents.list()
    assert incident.title == "checkout: checkout waiting for a node for over 1 h"
    assert _restarts(fake_kubernetes, "checkout") == 0


async def test_a_failing_sighting_remembered_by_the_previous_version_counts_as_one(
    env: Env, fake_kubernetes: FakeKubernetes
) -> None:
    # The version before remembered a first failing sighting as `unhealthy_since`; read by
    # this one as no failing sighting at all, the restart due at the next check waited one more.
    assert (await _check(env))["checkout"] is Verdict.WATCH
    await _remember_as_the_previous_version(env, unhealthy_since=env.clock.now().timestamp())
    assert (await _check(env, minutes=1))["checkout"] is Verdict.RESTART
    assert _restarts(fake_kubernetes, "checkout") == 1


async def _two_crash_loops_the_second_deleted_with(
    env: Env, fake: FakeKubernetes, answer: int
) -> Incident:
    """Two crash-looping pods of checkout beside one waiting for a node, Kubernetes answering
    `answer` to the second's delete; the incident declared for checkout."""
    owner = fake.state.replica_set_of("shop", "checkout")
    fake.state.add(pod("checkout-7d9-new1", namespace="shop", owner=owner, unschedulable=NO_ROOM))
    for name in ("checkout-7d9-xa", "checkout-7d9-xb"):
        fake.state.add(
            pod(
                name,
                namespace="shop",
                owner=owner,
                ready=False,
                restarts=7,
                waiting_reason="CrashLoopBackOff",
            )
        )
    fake.fail["DELETE /api/v1/namespaces/shop/pods/checkout-7d9-xb"] = answer
    return await _checkout_errors(env)


async def test_replacing_two_pods_of_which_one_fails_says_which_one_was_replaced(
    env: Env, fake_kubernetes: FakeKubernetes
) -> None:
    # Two crash-looping pods beside one waiting for a node; Kubernetes refuses to delete the
    # second. The timeline said "could not replace pods a, b", the first one deleted all the
    # same: whoever read it looked for a crash loop in a pod that was gone.
    fake = fake_kubernetes
    incident = await _two_crash_loops_the_second_deleted_with(env, fake, 403)
    assert (await _check(env))["checkout"] is Verdict.REPLACE_PODS
    assert ("shop", "checkout-7d9-xa") not in fake.state.pods  # replaced
    assert ("shop", "checkout-7d9-xb") in fake.state.pods  # refused
    timeline = [e.text for e in await env.services.incidents.timeline(incident.id)]
    outcomes = [t for t in timeline if t.startswith("Automatic recovery ") and " pod" in t]
    said = outcomes[-1]
    assert said.startswith(
        "Automatic recovery replaced pod checkout-7d9-xa (could not replace pod"
        " checkout-7d9-xb) of deployment checkout of checkout:"
    ), said


async def test_giving_up_after_pod_replacements_does_not_say_restarts(
    env: Env, fake_kubernetes: FakeKubernetes
) -> None:
    # Beside a pod waiting for a node only the crash-looping pod is replaced, never the
    # deployment restarted; given up, the incident declared read "unhealthy after 2
    # automatic restarts" and the page "stopped after 2 restarts": whoever was paged looked
    # for two rollout restarts that were never made.
    fake = fake_kubernetes
    crash_loop = _crash_loop_beside_a_pod_waiting_for_a_node(fake)
    for minutes, verdict in ((0, Verdict.REPLACE_PODS), (1, Verdict.REPLACE_PODS), (1, None)):
        crash_loop()
        decided = (await _check(env, minutes=minutes))["checkout"]
        assert decided is (verdict or Verdict.GIVE_UP), minutes
    assert _restarts(fake, "checkout") == 0
    [incident] = await env.services.incidents.list()
    assert incident.title == "checkout: checkout crash-looping after 2 automatic pod replacements"
    assert "restart" not in incident.title


async def test_a_restart_is_recorded_on_the_service_incident_behind_sixty_newer_open_ones(
    env: Env, fake_kubernetes: FakeKubernetes
) -> None:
    """Recovery looked for the service's incident among the newest 50 open ones: with more
    declared since (a busy week of P3s left open), it restarted on no incident's timeline."""
    fake = fake_kubernetes
    owner = fake.state.replica_set_of("shop", "checkout")
    fake.state.add(
        pod(
            "checkout-7d9-xyz",
            namespace="shop",
            owner=owner,
            ready=False,
            restarts=7,
            waiting_reason="CrashLoopBackOff",
        )
    )
    incident = await env.services.incidents.declare(
        DeclareIncident(severity="P3", title="Checkout errors", services=("checkout",)),
        Actor("U0ALICE", "alice"),
    )
    for n in range(60):
        await env.services.incidents.declare(
            DeclareIncident(severity="P3", title=f"Other {n}", services=(f"svc{n}",)),
            Actor("U0BOB", "bob"),
        )
    assert (await _check(env))["checkout"] is Verdict.RESTART
    assert "auto_recovery_restart" in await env.timeline_kinds(incident)


async def test_each_restart_and_replacement_says_the_page_that_follows_if_they_fail(
    env: Env, fake_kubernetes: FakeKubernetes
) -> None:
    # "not restarting ... (a human is paged if it lasts over 1 h)" said what the wait for a
    # node would bring; "restarting ..." and "replacing pods ..." said nothing of the page
    # after the last of them, so the timeline read as if the bot would go on alone.
    fake = fake_kubernetes
    incident = await _checkout_errors(env)
    assert (await _check(env))["checkout"] is Verdict.WATCH
    assert (await _check(env, minutes=1))["checkout"] is Verdict.RESTART
    crash_loop = _crash_loop_beside_a_pod_waiting_for_a_node(fake)
    crash_loop()
    assert (await _check(env, minutes=1))["checkout"] is Verdict.REPLACE_PODS
    timeline = [e.text for e in await env.services.incidents.timeline(incident.id)]
    said = [t for t in timeline if t.startswith("Automatic recovery: ")]
    assert said == [
        "Automatic recovery: restarting deployment checkout of checkout (1/3 ready; restart 1"
        " of 2; a human is paged if 2 restarts in 1 h do not fix it)",
        "Automatic recovery: replacing pod checkout-7d9-xyz of deployment checkout of checkout"
        " (1/3 ready, 1 in CrashLoopBackOff (checkout-7d9-xyz), 1 pod waiting for a node:"
        f" Unschedulable: {NO_ROOM}; replacing only the crash-looping pod checkout-7d9-xyz,"
        " not restarting the deployment (that would replace the ready pods too and add pods"
        " to place); replacement 2 of 2; a human is paged if 2 replacements in 1 h do not fix"
        " it)",
    ], said


async def test_replacing_two_pods_of_which_one_is_gone_says_it_was_left_alone(
    env: Env, fake_kubernetes: FakeKubernetes
) -> None:
    # One of two crash-looping pods is deleted by someone else just before the bot's delete
    # (404): the action is done, as an approved one would be, and the timeline read
    # "replaced pod checkout-7d9-xa (replaced pod checkout-7d9-xb)", the gone pod as replaced.
    fake = fake_kubernetes
    incident = await _two_crash_loops_the_second_deleted_with(env, fake, 404)
    assert (await _check(env))["checkout"] is Verdict.REPLACE_PODS
    timeline = [e.text for e in await env.services.incidents.timeline(incident.id)]
    [said] = [t for t in timeline if t.startswith("Automatic recovery replaced")]
    assert said.startswith(
        "Automatic recovery replaced pod checkout-7d9-xa (left pod checkout-7d9-xb alone) of"
        " deployment checkout of checkout: deleted pod checkout-7d9-xa (pod checkout-7d9-xb is"
        " gone); now"
    ), said
