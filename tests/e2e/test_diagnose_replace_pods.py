"""What /diagnose finds, offers and does for a crash loop beside pods waiting for a node agree:
one button replaces exactly the crash-looping pods its finding names, as automatic recovery
does. End to end through the Slack double (signed command and clicks), on the fake
Kubernetes API server."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.conftest import HarnessFactory
from tests.fake_kubernetes import FakeKubernetes, deployment, pod
from tests.harness import BotHarness
from tests.remediation_helpers import (
    APPROVER,
    REQUESTER,
    click,
    final_update,
    finish,
    press_fix,
    remediation_policy,
    request,
    request_id,
    thread_replies,
)
from tests.waiting import until

SERVICES = {
    "checkout": {
        "kubernetes": {
            "context": "test",
            "namespace": "shop",
            "deployments": ["checkout"],
            "max_replicas": 12,
        }
    }
}
LOOPING = ("checkout-7d9-xa", "checkout-7d9-xb", "checkout-7d9-xc")
NO_ROOM = "0/3 nodes are available: 3 Insufficient cpu."


def _scaled_out_with_three_crash_loops(fake: FakeKubernetes) -> None:
    """checkout scaled out to 5 with no room: one pod ready, one waiting for a node, three
    crash-looping."""
    fake.state.add(deployment("checkout", namespace="shop", replicas=5, ready=1))
    owner = fake.state.replica_set_of("shop", "checkout")
    fake.state.add(pod("checkout-7d9-ok", namespace="shop", owner=owner))
    fake.state.add(pod("checkout-7d9-new", namespace="shop", owner=owner, unschedulable=NO_ROOM))
    for name in LOOPING:
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


def _deleted(fake: FakeKubernetes) -> list[str]:
    return [
        r.path.rsplit("/", 1)[1]
        for r in fake.requests
        if r.method == "DELETE" and "/pods/" in r.path
    ]


def _buttons(harness: BotHarness) -> list[dict[str, Any]]:
    [summary] = [
        c.response["message"] | {"channel": c.response["channel"]}
        for c in harness.double.calls_to("chat.postMessage")
        if c.ok
        and str(c.params.get("text", "")).startswith("Diagnosis of")
        and not c.params.get("thread_ts")
    ]
    return [
        e | {"message": summary}
        for b in summary["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    ]


async def test_one_button_replaces_every_crash_looping_pod_the_finding_names_and_only_those(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    # Three pods crash-looping beside one waiting for a node: /diagnose offered "Replace
    # crash-looping pod" for two of them (and nothing for the third), while automatic
    # recovery replaces all three. One request, one approval, the same three pods.
    fake = fake_kubernetes
    _scaled_out_with_three_crash_loops(fake)
    harness = await make_harness("sqlite", policy=remediation_policy(SERVICES))
    response = await harness.command(
        "checkout", command="/diagnose", user_id=REQUESTER, channel_id="C0GENERAL"
    )
    assert response.status == 200

    async def summarised() -> bool:
        return any(
            str(c.params.get("text", "")).startswith("Diagnosis of")
            for c in harness.double.calls_to("chat.postMessage")
        )

    await until(summarised, "the diagnosis summary to be posted")
    await harness.settle()
    await harness.replies()
    buttons = _buttons(harness)
    replace = [b for b in buttons if json.loads(b["value"])["a"] == "kubernetes.delete_pod"]
    assert len(replace) == 1, [b["text"]["text"] for b in buttons]
    [button] = replace
    assert button["text"]["text"] == "Replace 3 crash-looping pods of checkout"
    assert json.loads(button["value"])["p"]["pods"] == list(LOOPING)
    assert "kubernetes.restart" not in [json.loads(b["value"])["a"] for b in buttons]

    summary = button["message"]
    message = await press_fix(harness, summary, button)
    shown = str(message["blocks"])
    assert "delete 3 pods, checkout-7d9-xa (Running), checkout-7d9-xb (Running)," in shown
    assert "checkout-7d9-xc (Running) of deployment checkout, in namespace shop" in shown
    assert "checkout-7d9-ok" not in shown and "checkout-7d9-new" not in shown

    assert "Running" in await click(harness, message, user=APPROVER)
    await finish(harness, request_id(message))
    assert sorted(_deleted(fake)) == list(LOOPING)  # those, and only those
    assert ("shop", "checkout-7d9-ok") in fake.state.pods
    assert ("shop", "checkout-7d9-new") in fake.state.pods
    [outcome] = thread_replies(harness, message)
    assert "deleted pods checkout-7d9-xa, checkout-7d9-xb, checkout-7d9-xc" in outcome, outcome


async def test_typed_pods_are_checked_each_and_a_pod_gone_is_left_out_and_said(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    fake = fake_kubernetes
    _scaled_out_with_three_crash_loops(fake)
    fake.state.add(pod("debug", namespace="shop", labels={"app": "checkout"}))  # nobody's
    harness = await make_harness("sqlite", policy=remediation_policy(SERVICES))

    # One pod no catalogued deployment owns: nothing requested, the others included.
    answer, posted = await request(
        harness, "kubernetes.delete_pod checkout pods=checkout-7d9-xa,debug"
    )
    assert posted is None and "pod debug belongs to no catalogued deployment" in answer, answer
    answer, posted = await request(
        harness, "kubernetes.delete_pod checkout pods=" + ",".join(f"p{n}" for n in range(26))
    )
    assert posted is None and "at most 25" in answer, answer

    # Gone before the dry run: left out, said so; gone before the approval: said so too.
    answer, message = await request(
        harness,
        "kubernetes.delete_pod checkout pods=checkout-7d9-xb,checkout-7d9-gone,checkout-7d9-xa",
    )
    assert message is not None, answer
    shown = str(message["blocks"])
    assert "delete 2 pods, checkout-7d9-xa (Running), checkout-7d9-xb (Running)" in shown
    assert "pod checkout-7d9-gone gone already (left alone)" in shown
    # The same pods asked again, in another order or as `pod=`: the same change.
    answer, again = await request(
        harness, "kubernetes.delete_pod checkout checkout-7d9-xa,checkout-7d9-gone,checkout-7d9-xb"
    )
    assert again is None and f"request #{request_id(message)} asks for the same" in answer
    del fake.state.pods[("shop", "checkout-7d9-xb")]
    await click(harness, message, user=APPROVER)
    await finish(harness, request_id(message))
    assert _deleted(fake) == ["checkout-7d9-xa", "checkout-7d9-xb"]  # xb answered 404
    assert ("shop", "checkout-7d9-xc") in fake.state.pods  # never named, never touched
    [outcome] = thread_replies(harness, message)
    assert "deleted pod checkout-7d9-xa" in outcome and "pod checkout-7d9-xb is gone" in outcome
    assert "*Succeeded*: deleted pod checkout-7d9-xa (pod checkout-7d9-xb is gone)" in str(
        final_update(harness, message)["blocks"]
    )


async def test_a_button_naming_many_long_pods_carries_what_it_says_within_slacks_2000(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    # 25 crash-looping pods of 63 characters (the most a replica set's pod name has) of a
    # deployment named with 253, of a service named with 63 (the most either may have): the
    # button's value passed Slack's 2,000 characters and was cut, its JSON broken, so the
    # one button at 3 a.m. requested nothing.
    fake = fake_kubernetes
    name = "checkout-" + "x" * 244
    service = "checkout-" + "s" * 54
    services = {service: {"kubernetes": {**SERVICES["checkout"]["kubernetes"]}}}
    services[service]["kubernetes"]["deployments"] = [name]
    fake.state.add(deployment(name, namespace="shop", replicas=27, ready=1))
    owner = fake.state.replica_set_of("shop", name)
    fake.state.add(pod("checkout-7d9-ok", namespace="shop", owner=owner))
    fake.state.add(pod("checkout-7d9-new", namespace="shop", owner=owner, unschedulable=NO_ROOM))
    looping = [f"checkout-7d9-{n:02d}-".ljust(63, "y") for n in range(25)]
    for pod_name in looping:
        fake.state.add(
            pod(
                pod_name,
                namespace="shop",
                owner=owner,
                ready=False,
                restarts=7,
                waiting_reason="CrashLoopBackOff",
            )
        )
    harness = await make_harness("sqlite", policy=remediation_policy(services))
    response = await harness.command(
        service, command="/diagnose", user_id=REQUESTER, channel_id="C0GENERAL"
    )
    assert response.status == 200

    async def summarised() -> bool:
        return any(
            str(c.params.get("text", "")).startswith("Diagnosis of")
            for c in harness.double.calls_to("chat.postMessage")
        )

    await until(summarised, "the diagnosis summary to be posted")
    await harness.settle()
    await harness.replies()
    [button] = [b for b in _buttons(harness) if '"kubernetes.delete_pod"' in b["value"]]
    assert len(button["value"]) <= 2000
    named = json.loads(button["value"])["p"]["pods"]
    assert 0 < len(named) < 25 and named == looping[: len(named)]
    assert button["text"]["text"].startswith(f"Replace {len(named)} of 25 crash-looping pods")
    summary = button["message"]
    said = str(summary["blocks"])
    assert f"(the first {len(named)} of 25: as many as one button can carry)" in said, said

    message = await press_fix(harness, summary, button)
    shown = str(message["blocks"])
    assert f"delete {len(named)} pods" in shown
    assert all(p in shown for p in named) and not any(p in shown for p in looping[len(named) :])
