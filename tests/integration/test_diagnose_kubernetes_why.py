"""Kubernetes findings say why, and belong to the service (issue 15, item 10), through the
fake API server: containers OOMKilled at a 256Mi limit are reported as such, with limit and
request, and the advice follows the runbook's memory path (raise the limit, scale out), not a
restart; the service's events are those of its own deployments, replica sets and pods."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.diagnostics import text
from bot.diagnostics.findings import Grade, report_to_json
from bot.remediation import actions
from bot.remediation.executors.kubernetes import KubernetesExecutor
from bot.remediation.plans import target_for
from bot.slack import diagnosis_blocks as views
from tests.diagnostics_helpers import diagnose, finding, policy_with
from tests.fake_kubernetes import FakeKubernetes, deployment, event, pod

CATALOG = {
    "search": {
        "kubernetes": {
            "context": "test",
            "namespace": "shop",
            "deployments": ["search"],
            "min_replicas": 2,
            "max_replicas": 6,
        }
    }
}


def _cluster(fake: FakeKubernetes) -> dict[str, str]:
    """search crash-looping, OOMKilled; search-indexer (a name-prefix trap) and checkout
    failing beside it in the same namespace, each with its own Warning events."""
    state = fake.state
    names = {}
    for name, replicas in (("search", 2), ("search-indexer", 1), ("checkout", 2)):
        state.add(deployment(name, namespace="shop", replicas=replicas, ready=0))
        names[name] = state.replica_set_of("shop", name)["metadata"]["name"]
    search = state.replica_set_of("shop", "search")
    for suffix in ("a1b2c", "d3e4f"):
        state.add(
            pod(
                f"{names['search']}-{suffix}",
                namespace="shop",
                owner=search,
                ready=False,
                restarts=9,
                waiting_reason="CrashLoopBackOff",
                last_exit_code=137,
                last_reason="OOMKilled",
                limits={"memory": "256Mi", "cpu": "500m"},
                requests={"memory": "128Mi"},
            )
        )
    indexer = state.add(
        pod(
            f"{names['search-indexer']}-x9y8z",
            namespace="shop",
            owner=state.replica_set_of("shop", "search-indexer"),
            ready=False,
            restarts=4,
            waiting_reason="CrashLoopBackOff",
            last_exit_code=1,
        )
    )
    checkout = state.add(
        pod(
            f"{names['checkout']}-q1w2e",
            namespace="shop",
            owner=state.replica_set_of("shop", "checkout"),
            ready=False,
            restarts=3,
            waiting_reason="CrashLoopBackOff",
            last_exit_code=2,
        )
    )
    for _, name in list(state.pods):
        state.set_log("shop", name, "loading index\nkilled", previous=True)
    search_pod = state.pods[("shop", f"{names['search']}-a1b2c")]
    for n, (about, reason) in enumerate(
        [(search_pod, "BackOff"), (search, "FailedCreate"), (indexer, "BackOff")]
    ):
        state.add(
            event(f"e{n}", namespace="shop", reason=reason, message=reason, about=about, count=3)
        )
    state.add(event("e3", namespace="shop", reason="BackOff", message="x", about=checkout))
    # A search pod replaced since: its events are still search's (its set's generated name).
    state.add(
        event(
            "e4",
            namespace="shop",
            reason="Unhealthy",
            message="probe failed",
            object_name=f"{names['search']}-gone1",
        )
    )
    return names


def _crash_looping(state: Any, pod_name: str, *, replicas: int = 2, **facts: Any) -> None:
    """`search` in `shop`, none of its `replicas` ready, with one pod in CrashLoopBackOff
    (its restarts, last exit and resources in `facts`)."""
    state.add(deployment("search", namespace="shop", replicas=replicas, ready=0))
    owner = state.replica_set_of("shop", "search")
    state.add(
        pod(
            pod_name,
            namespace="shop",
            owner=owner,
            ready=False,
            waiting_reason="CrashLoopBackOff",
            **facts,
        )
    )


async def test_oom_killed_pods_say_why_and_the_advice_raises_memory_not_restarts(
    fake_kubernetes: FakeKubernetes, tmp_path: Path
) -> None:
    names = _cluster(fake_kubernetes)
    report = await diagnose(tmp_path, CATALOG, "search")

    pods = finding(report, "kubernetes.pods")
    assert pods.grade is Grade.CRIT
    assert "2 of 2 not Running and ready; 2 in CrashLoopBackOff; 2 OOMKilled" in pods.summary
    assert "app last ended OOMKilled (exit 137), memory limit 256Mi, request 128Mi" in pods.summary
    assert pods.summary.endswith("the memory limit should be raised")
    evidence = "\n".join(pods.evidence)
    assert "search-indexer" not in evidence and "checkout" not in evidence  # not search's
    assert (
        f"{names['search']}-a1b2c: Running, CrashLoopBackOff, 9 restarts; app last ended"
        " OOMKilled (exit 137), memory limit 256Mi, request 128Mi" in evidence
    )
    [first, _] = pods.facts["crashloops"]
    assert first["containers"][0] | {"restarts": 9} == {
        "name": "app",
        "restarts": 9,
        "last_reason": "OOMKilled",
        "exit_code": 137,
        "memory_limit": "256Mi",
        "memory_request": "128Mi",
    }
    assert "OOMKilled (exit 137)" in finding(report, "kubernetes.restarts").summary

    # The runbook's memory path: raise the limit, or scale out; a restart repeats the kill.
    actions = [s.action for s in report.suggestions]
    assert actions[:2] == ["advice.raise_memory_limit", "kubernetes.scale"]
    assert "kubernetes.restart" not in actions
    assert "kubernetes.rollback" not in actions  # revision 1: nothing to return to
    raise_limit, scale = report.suggestions[:2]
    assert raise_limit.label == "Raise search's memory limit (256Mi)"
    assert "container app in deployment shop/search above 256Mi (request 128Mi)" in (
        raise_limit.would
    )
    assert scale.params == {"deployment": "search", "replicas": 3}

    # Events: search's pods (a replaced one too) and replica set; not its neighbours'.
    events = finding(report, "kubernetes.events")
    shown = "\n".join(events.evidence)
    assert f"Pod/{names['search']}-a1b2c: BackOff" in shown
    assert f"ReplicaSet/{names['search']}: FailedCreate" in shown
    assert f"Pod/{names['search']}-gone1: Unhealthy" in shown
    assert "checkout" not in shown and "search-indexer" not in shown
    assert events.facts["others_left_out"] == 2


async def test_a_crash_loop_that_is_not_oom_still_restarts_and_rolls_back_only_with_history(
    fake_kubernetes: FakeKubernetes, tmp_path: Path
) -> None:
    state = fake_kubernetes.state
    _crash_looping(state, "search-abc-1", restarts=5, last_exit_code=1)
    state.set_log("shop", "search-abc-1", "ERROR no config", previous=True)
    report = await diagnose(tmp_path, CATALOG, "search")
    assert [s.action for s in report.suggestions] == ["kubernetes.restart"]
    assert "app last ended Error (exit 1)" in finding(report, "kubernetes.pods").summary

    state.new_revision("shop", "search", "registry.example/search:2")
    report = await diagnose(tmp_path, CATALOG, "search")
    rollout = finding(report, "kubernetes.rollout")
    assert (rollout.facts["revision"], rollout.facts["previous_revision"]) == (2, 1)
    assert [s.action for s in report.suggestions] == ["kubernetes.restart", "kubernetes.rollback"]


async def test_secrets_a_crashing_pod_printed_to_its_log_never_leave_the_bot(
    fake_kubernetes: FakeKubernetes, tmp_path: Path
) -> None:
    # A crashing app often prints its configuration: `DB_PASSWORD=...`, `api_key: ...`. Only
    # `password=` in lower case was masked; the thread showed the rest verbatim.
    state = fake_kubernetes.state
    _crash_looping(state, "search-abc-1", restarts=5, last_exit_code=1)
    secrets = ("hunter2-db", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "wJalrXUtnFEMI/K7MDENGbPxRfiCY")
    state.set_log(
        "shop",
        "search-abc-1",
        f"ERROR cannot connect with DB_PASSWORD={secrets[0]} DB_HOST=db.internal\n"
        f'ERROR config rejected: {{"stripe_api_key": "{secrets[1]}", "region": "eu"}}\n'
        f"FATAL AWS_SECRET_ACCESS_KEY={secrets[2]} is invalid",
        previous=True,
    )
    report = await diagnose(tmp_path, CATALOG, "search")
    log = finding(report, "kubernetes.logs")
    assert len(log.evidence) == 3 and all(s in str(log.evidence) for s in secrets)  # as read

    shown = [
        views.summary_text(report),
        str(views.summary_blocks(report, actor="U0ALICE")),
        str(views.evidence_messages(report)),
        text.render(report),
    ]
    # What the outbox stores for the thread, days in the database, is redacted too.
    shown.append(json.dumps(report_to_json(report)))
    for output in shown:
        for secret in secrets:
            assert secret not in output
    assert "AWS_SECRET_ACCESS_KEY=***" in shown[3] and "DB_HOST=db.internal" in shown[3]
    assert '"region": "eu"' in shown[3]


async def test_a_deployment_that_cannot_be_read_gets_no_guessed_scale_or_restart(
    fake_kubernetes: FakeKubernetes, tmp_path: Path
) -> None:
    # The deployment's GET answered 500: "Scale search to 3 (from 2)" was offered for a
    # deployment of 4 replicas (a scale in, at an OOM), and "Restart None" for the failed read.
    state = fake_kubernetes.state
    _crash_looping(
        state,
        "search-a1b2c",
        replicas=4,
        restarts=9,
        last_exit_code=137,
        last_reason="OOMKilled",
        limits={"memory": "256Mi"},
        requests={"memory": "128Mi"},
    )
    fake_kubernetes.fail["GET /apis/apps/v1/namespaces/shop/deployments/search"] = 500
    report = await diagnose(tmp_path, CATALOG, "search")
    assert "unreachable" in finding(report, "kubernetes.rollout").summary
    assert [s.action for s in report.suggestions] == ["advice.raise_memory_limit"]

    fake_kubernetes.fail.clear()
    report = await diagnose(tmp_path, CATALOG, "search")
    scale = next(s for s in report.suggestions if s.action == "kubernetes.scale")
    assert scale.params["replicas"] == 6 and "from 4 to 6" in scale.would


async def test_colour_codes_and_control_characters_of_a_log_never_reach_a_reader(
    fake_kubernetes: FakeKubernetes, tmp_path: Path
) -> None:
    # Apps colour their logs: the thread showed "\x1b[31mERROR\x1b[0m", and a NUL, a bell or a
    # right-to-left override a pod printed went on to Slack and the CLI's terminal as they were.
    state = fake_kubernetes.state
    _crash_looping(state, "search-abc-1", restarts=5, last_exit_code=1)
    state.set_log(
        "shop",
        "search-abc-1",
        "\x1b[1;31mERROR\x1b[0m db down\x00\x07 \u202egnp.exe\nFATAL \x1b[2Kgiving up",
        previous=True,
    )
    report = await diagnose(tmp_path, CATALOG, "search")
    log = finding(report, "kubernetes.logs")
    assert log.evidence == ("search-abc-1: ERROR db down gnp.exe", "search-abc-1: FATAL giving up")
    shown = [
        views.summary_text(report),
        str(views.summary_blocks(report, actor="U0ALICE")),
        str(views.evidence_messages(report)),
        text.render(report),
        json.dumps(report_to_json(report)),
    ]
    for output in shown:
        for char in ("\x1b", "\x00", "\x07", "\u202e", "\\u001b", "\\u0000", "\\u202e"):
            assert char not in output


async def test_every_button_offered_for_a_selector_catalog_is_one_the_remediation_takes(
    tmp_path: Path, fake_kubernetes: FakeKubernetes
) -> None:
    # A catalog entry naming its pods by `selector` (no `deployments`) was offered "Restart
    # checkout" and "Roll back checkout" for a crash loop; each click answered "Nothing
    # requested: The catalog names no deployments for 'checkout'": buttons that never work.
    state = fake_kubernetes.state
    state.add(deployment("checkout", namespace="shop", replicas=2, ready=1))
    state.add(
        pod(
            "checkout-1",
            namespace="shop",
            owner=state.replica_set_of("shop", "checkout"),
            ready=False,
            restarts=5,
            waiting_reason="CrashLoopBackOff",
            last_exit_code=1,
        )
    )
    services = {
        "checkout": {
            "kubernetes": {"context": "test", "namespace": "shop", "selector": "app=checkout"}
        }
    }
    report = await diagnose(tmp_path, services, "checkout")
    assert finding(report, "kubernetes.pods").grade > Grade.OK  # the crash loop is found
    policy = policy_with(services)
    executor = KubernetesExecutor()
    for suggestion in report.suggestions:
        if suggestion.advice:
            continue
        target = target_for(policy, suggestion.action, "checkout")
        params = actions.from_button(target.spec, suggestion.params)
        await executor.preview(target, params)  # NotApplicable: a button that never works
