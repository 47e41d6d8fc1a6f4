"""A scale-out waiting on the cluster autoscaler, and a rollout going normally, are not
failures to /diagnose (hostile review of remediation), through the fake API server: pods
Pending as Unschedulable are named with the scheduler's reason and get no Restart button;
a rollout under way gets no Restart (nor Roll back) button until Kubernetes marks it
stalled (ProgressDeadlineExceeded), when rolling back is offered first."""

from __future__ import annotations

from pathlib import Path

from bot.diagnostics.findings import Grade
from tests.diagnostics_helpers import diagnose, finding
from tests.fake_kubernetes import FakeKubernetes, deployment, pod, pod_metrics

CATALOG = {
    "search": {
        "kubernetes": {
            "context": "test",
            "namespace": "shop",
            "deployments": ["search"],
            "max_replicas": 10,
        }
    }
}
NO_ROOM = (
    "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available:"
    " 3 No preemption victims found for incoming pod."
)


def _scaled_out(fake: FakeKubernetes) -> None:
    """search scaled from 3 to 5: the 3 old pods ready, the 2 new ones waiting for a node."""
    state = fake.state
    state.add(deployment("search", namespace="shop", replicas=5, ready=3))
    owner = state.replica_set_of("shop", "search")
    for n in range(3):
        state.add(pod(f"search-7d9-r{n}", namespace="shop", owner=owner))
    for n in range(2):
        state.add(pod(f"search-7d9-p{n}", namespace="shop", owner=owner, unschedulable=NO_ROOM))


async def test_pods_waiting_for_a_node_are_named_and_get_no_restart(
    fake_kubernetes: FakeKubernetes, tmp_path: Path
) -> None:
    _scaled_out(fake_kubernetes)
    report = await diagnose(tmp_path, CATALOG, "search")

    pods = finding(report, "kubernetes.pods")
    assert pods.grade is Grade.WARN
    assert pods.summary == (
        f"2 of 5 not Running and ready; 2 pods waiting for a node: Unschedulable: {NO_ROOM}"
    )
    assert f"search-7d9-p0: Pending, Unschedulable: {NO_ROOM}, 0 restarts" in pods.evidence
    assert finding(report, "kubernetes.rollout").grade is Grade.WARN  # 3/5 ready, as it is
    assert "kubernetes.restart" not in [s.action for s in report.suggestions]
    # A pod on no node has no container to read a log of: none asked for.
    assert not [p for p in fake_kubernetes.paths_requested() if p.endswith("/log")]

    # The same shortfall from a pod that runs and is not ready is a failure: restart offered.
    state = fake_kubernetes.state
    state.pods[("shop", "search-7d9-p1")] = pod(
        "search-7d9-p1", namespace="shop", owner=state.replica_set_of("shop", "search"), ready=False
    )
    report = await diagnose(tmp_path, CATALOG, "search")
    assert [s.action for s in report.suggestions] == ["kubernetes.restart"]
    assert "1 pod waiting for a node" in finding(report, "kubernetes.pods").summary


async def test_a_rollout_under_way_gets_no_restart_until_kubernetes_says_it_stalled(
    fake_kubernetes: FakeKubernetes, tmp_path: Path
) -> None:
    state = fake_kubernetes.state
    state.add(deployment("search", namespace="shop", replicas=3, ready=3))
    state.new_revision("shop", "search", "registry.example/search:2")
    status = state.deployments[("shop", "search")]["status"]
    # A rolling update one pod in: 1 of 3 updated, 2 ready, as maxUnavailable allows.
    status.update(readyReplicas=2, updatedReplicas=1)
    status["conditions"] = [
        {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}
    ]
    report = await diagnose(tmp_path, CATALOG, "search")
    rollout = finding(report, "kubernetes.rollout")
    assert rollout.grade is Grade.WARN
    assert "2/3 ready, 1 updated (rollout in progress), revision 2" == rollout.summary
    assert report.suggestions == ()  # neither a restart nor a rollback of a deploy going well

    status["conditions"] = [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
    ]
    report = await diagnose(tmp_path, CATALOG, "search")
    rollout = finding(report, "kubernetes.rollout")
    assert "(rollout stalled: ProgressDeadlineExceeded)" in rollout.summary
    assert [s.action for s in report.suggestions] == ["kubernetes.rollback", "kubernetes.restart"]
    assert report.suggestions[0].params == {"deployment": "search"}
    assert "ProgressDeadlineExceeded" in report.suggestions[0].would


async def test_a_scale_out_from_zero_is_never_below_the_catalogs_minimum(
    fake_kubernetes: FakeKubernetes, tmp_path: Path
) -> None:
    # search scaled to 0 by mistake under load, its last pod still burning its CPU: "Scale
    # search to 1" was offered, below the catalog's min_replicas of 2 (the remediation then
    # refused the button it had been given).
    state = fake_kubernetes.state
    state.add(deployment("search", namespace="shop", replicas=0, ready=0))
    owner = state.replica_set_of("shop", "search")
    state.add(pod("search-7d9-r0", namespace="shop", owner=owner, limits={"cpu": "500m"}))
    state.pod_metrics = {
        "shop": [pod_metrics("search-7d9-r0", namespace="shop", cpu="490m", memory="100Mi")]
    }
    catalog = {"search": {"kubernetes": dict(CATALOG["search"]["kubernetes"], min_replicas=2)}}
    report = await diagnose(tmp_path, catalog, "search")
    assert finding(report, "kubernetes.cpu").grade is Grade.CRIT
    [scale] = [s for s in report.suggestions if s.action == "kubernetes.scale"]
    assert scale.params["replicas"] == 2 and scale.label == "Scale search to 2"
    assert "from 0 to 2 replicas" in scale.would

    # Running more than the catalog's maximum already: no "scale-out" to fewer.
    state.deployments[("shop", "search")]["spec"]["replicas"] = 12
    state.deployments[("shop", "search")]["status"].update(replicas=12, readyReplicas=12)
    report = await diagnose(tmp_path, catalog, "search")
    assert finding(report, "kubernetes.cpu").grade is Grade.CRIT
    assert "kubernetes.scale" not in [s.action for s in report.suggestions]


async def test_a_paused_deployment_is_said_paused_and_gets_no_restart_nor_rollback(
    fake_kubernetes: FakeKubernetes, tmp_path: Path
) -> None:
    # Paused part way through a rollout (kubectl rollout pause), one pod crash-looping: the
    # finding read "rollout in progress" and Restart and Roll back were offered, though a
    # restart rolls nothing out and a rollback is refused until someone resumes it.
    state = fake_kubernetes.state
    state.add(deployment("search", namespace="shop", replicas=3, ready=2))
    state.new_revision("shop", "search", "registry.example/search:2")
    search = state.deployments[("shop", "search")]
    search["spec"]["paused"] = True
    search["status"].update(readyReplicas=2, updatedReplicas=1)
    owner = state.replica_set_of("shop", "search")
    state.add(pod("search-7d9-a", namespace="shop", owner=owner))
    state.add(
        pod(
            "search-7d9-b",
            namespace="shop",
            owner=owner,
            ready=False,
            restarts=7,
            waiting_reason="CrashLoopBackOff",
        )
    )
    report = await diagnose(tmp_path, CATALOG, "search")
    rollout = finding(report, "kubernetes.rollout")
    assert "(paused: kubectl rollout resume to go on)" in rollout.summary
    assert rollout.facts["paused"] is True
    actions = [s.action for s in report.suggestions]
    assert "kubernetes.restart" not in actions and "kubernetes.rollback" not in actions

    # Resumed: the crash loop during a rollout is advised on as ever.
    search["spec"]["paused"] = False
    report = await diagnose(tmp_path, CATALOG, "search")
    assert [s.action for s in report.suggestions][:2] == [
        "kubernetes.rollback",
        "kubernetes.restart",
    ]


async def test_a_crash_loop_beside_pods_waiting_for_a_node_offers_to_replace_only_that_pod(
    fake_kubernetes: FakeKubernetes, tmp_path: Path
) -> None:
    # search scaled out to 5 with no room, one of its running pods crash-looping: Restart was
    # offered first, which replaces the 3 ready pods too, each needing a node, under load.
    _scaled_out(fake_kubernetes)
    state = fake_kubernetes.state
    state.pods[("shop", "search-7d9-r2")] = pod(
        "search-7d9-r2",
        namespace="shop",
        owner=state.replica_set_of("shop", "search"),
        ready=False,
        restarts=9,
        waiting_reason="CrashLoopBackOff",
    )
    state.deployments[("shop", "search")]["status"]["readyReplicas"] = 2
    report = await diagnose(tmp_path, CATALOG, "search")
    assert "1 in CrashLoopBackOff" in finding(report, "kubernetes.pods").summary
    [replace] = [s for s in report.suggestions if s.action == "kubernetes.delete_pod"]
    assert replace is report.suggestions[0]
    # One pod is named as the release before names it (pod=): its button still works
    # on a replica of that release during a rolling upgrade, or after a rollback.
    assert dict(replace.params) == {"deployment": "search", "pod": "search-7d9-r2"}
    assert replace.label == "Replace crash-looping pod search-7d9-r2"
    assert "not a restart of search" in replace.would and "2 pods wait for a node" in replace.would
    assert "kubernetes.restart" not in [s.action for s in report.suggestions]
