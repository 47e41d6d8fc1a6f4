"""`kubernetes.delete_pod` with several pods, pushed by a hostile user and by the cluster
moving under it: the approved run deletes what its request listed, and nothing else. End to
end through the Slack double (signed commands and clicks), on the fake Kubernetes API
server."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from bot.models import Actor
from bot.remediation import storage as requests
from bot.remediation.plans import Preview
from tests.e2e.conftest import HarnessFactory
from tests.fake_kubernetes import FakeKubernetes, deployment, pod
from tests.harness import BotHarness
from tests.remediation_helpers import (
    APPROVER,
    REQUESTER,
    click,
    finish,
    remediation_policy,
    request,
    request_id,
    thread_replies,
)

SERVICES = {
    "checkout": {
        "kubernetes": {"context": "test", "namespace": "shop", "deployments": ["checkout"]}
    },
    "cart": {"kubernetes": {"context": "test", "namespace": "shop", "deployments": ["cart"]}},
    "payments": {
        "kubernetes": {"context": "test", "namespace": "pay", "deployments": ["payments"]}
    },
}


def _cluster(fake: FakeKubernetes) -> None:
    """checkout's pods a, b, c; cart's pod cart-1 in the same namespace; payments' pod
    checkout-7d9-pa in another namespace (a name checkout's pods could have)."""
    state = fake.state
    for name, namespace, pods in (
        ("checkout", "shop", ("checkout-7d9-a", "checkout-7d9-b", "checkout-7d9-c")),
        ("cart", "shop", ("cart-1",)),
        ("payments", "pay", ("checkout-7d9-pa",)),
    ):
        state.add(deployment(name, namespace=namespace, replicas=len(pods)))
        owner = state.replica_set_of(namespace, name)
        for pod_name in pods:
            state.add(pod(pod_name, namespace=namespace, owner=owner))


def _deletes(fake: FakeKubernetes) -> list[tuple[str, Any]]:
    return [(r.path, r.body) for r in fake.requests if r.method == "DELETE"]


async def _harness(
    make_harness: HarnessFactory, fake: FakeKubernetes, store: str = "sqlite"
) -> BotHarness:
    _cluster(fake)
    return await make_harness(store, policy=remediation_policy(SERVICES))


async def test_a_pod_recreated_under_its_name_since_the_preview_is_left_alone(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    fake = fake_kubernetes
    harness = await _harness(make_harness, fake)
    _, message = await request(
        harness, "kubernetes.delete_pod checkout pods=checkout-7d9-a,checkout-7d9-b"
    )
    assert message is not None
    # Another pod now holds b's name (another UID): it is not the pod the approver saw.
    owner = fake.state.replica_set_of("shop", "checkout")
    newcomer = pod("checkout-7d9-b", namespace="shop", owner=owner)
    newcomer["metadata"]["uid"] = "uid-shop-checkout-7d9-b-2"
    fake.state.add(newcomer)
    assert "someone else must approve it" in await click(harness, message, user=REQUESTER)
    await click(harness, message, user=APPROVER)
    await finish(harness, request_id(message))
    assert "already succeeded" in await click(harness, message, user=APPROVER)
    await finish(harness, request_id(message))
    # Each delete carried the UID the preview read; the newcomer answered 409 and stays.
    assert _deletes(fake) == [
        (
            f"/api/v1/namespaces/shop/pods/{name}",
            {"preconditions": {"uid": f"uid-shop-{name}"}},
        )
        for name in ("checkout-7d9-a", "checkout-7d9-b")
    ]
    assert fake.state.pods[("shop", "checkout-7d9-b")]["metadata"]["uid"].endswith("-2")
    assert ("shop", "checkout-7d9-a") not in fake.state.pods
    assert ("shop", "checkout-7d9-c") in fake.state.pods
    [outcome] = thread_replies(harness, message)
    assert "pod checkout-7d9-b was recreated since the preview (UID changed)" in outcome, outcome


async def test_pods_of_another_service_or_namespace_refuse_the_whole_request(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    fake = fake_kubernetes
    harness = await _harness(make_harness, fake)
    # cart's pod, in checkout's namespace: not checkout's to delete, nor are the others.
    answer, posted = await request(
        harness, "kubernetes.delete_pod checkout pods=checkout-7d9-a,cart-1"
    )
    assert posted is None and "pod cart-1 belongs to no catalogued deployment" in answer, answer
    # payments' pod, named as checkout's could be, in another namespace: not even looked for
    # there; checkout's namespace has no such pod.
    answer, posted = await request(harness, "kubernetes.delete_pod checkout checkout-7d9-pa")
    assert posted is None and "does not exist in namespace shop" in answer, answer
    assert _deletes(fake) == []


async def test_bad_pod_lists_get_a_clear_answer_and_change_nothing(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    fake = fake_kubernetes
    harness = await _harness(make_harness, fake)
    too_long = "p" * 254
    for typed, said in (
        ("pods=checkout-7d9-a,,checkout-7d9-b", "an empty pod name (a comma too many?)"),
        ("pods=checkout-7d9-a,", "an empty pod name (a comma too many?)"),
        (f"pods={too_long}", f"'{'p' * 63}' is not a pod name"),
        ("pods=" + ",".join(f"p{n}" for n in range(26)), "at most 25 pods a request (26 given)"),
        ("pods=<!channel>", "'&lt;!channel&gt;' is not a pod name"),
        ("pods=checkout-7d9-a pod=checkout-7d9-b", "'pods' is given more than once"),
        ("pods=checkout-7d9-a, checkout-7d9-b", "a list takes no spaces (a,b)"),
    ):
        answer, posted = await request(harness, f"kubernetes.delete_pod checkout {typed}")
        assert posted is None and said in answer, (typed, answer)
        assert "<!channel>" not in answer
    # The same pod twice is that pod once, however many times: 26 names of one pod are one.
    _, message = await request(
        harness, "kubernetes.delete_pod checkout pods=" + ",".join(["checkout-7d9-a"] * 26)
    )
    assert message is not None
    assert "delete pod checkout-7d9-a of deployment checkout" in str(message["blocks"])
    assert _deletes(fake) == []


async def test_a_forged_button_naming_pods_twice_over_is_refused(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    # A button's value is the clicker's to forge: `pod` and `pods` both given, one of them
    # was dropped without a word, where a typed request is told it named pods twice.
    harness = await _harness(make_harness, fake_kubernetes)
    value = {"s": "checkout", "a": "kubernetes.delete_pod"}
    value["p"] = {"pod": "checkout-7d9-a", "pods": ["checkout-7d9-b"]}  # type: ignore[assignment]
    response = await harness.click(
        "diagnose_suggestion_0", value=json.dumps(value), channel_id="C0GENERAL", user_id=REQUESTER
    )
    assert response.status == 200
    [answer] = await harness.replies()
    assert "'pods' is given more than once" in str(answer["text"]), answer
    assert _deletes(fake_kubernetes) == []


async def test_pods_whose_list_a_request_could_not_show_whole_are_not_requested(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    # Pods checkout's replica set owns under names of 150 characters (made by hand: the
    # controller's are 63 at most): 25 of them fit the 4,000 characters of a command, but
    # not the request message, which cut the list the approver read at 2,800 characters,
    # while the approval deleted every one.
    fake = fake_kubernetes
    harness = await _harness(make_harness, fake)
    owner = fake.state.replica_set_of("shop", "checkout")
    names = [f"checkout-{n:02d}-" + "x" * 138 for n in range(25)]
    for name in names:
        fake.state.add(pod(name, namespace="shop", owner=owner))
    answer, posted = await request(harness, f"kubernetes.delete_pod checkout {','.join(names)}")
    assert posted is None, answer
    assert "too long to show whole" in answer and "ask for fewer pods at a time" in answer, answer
    _, message = await request(harness, f"kubernetes.delete_pod checkout {','.join(names[:10])}")
    assert message is not None
    shown = str(message["blocks"])
    assert all(name in shown for name in names[:10])
    assert _deletes(fake) == []


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_a_request_waiting_as_pod_before_the_upgrade_is_the_same_change_as_pods(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes, store: str
) -> None:
    # A request made by the bot before pods were named together waits as `pod=`; the same
    # pod asked as `pods=` after the upgrade was another change: two requests to approve.
    fake = fake_kubernetes
    harness = await _harness(make_harness, fake, store)
    now = harness.services.clock.now()
    older = Preview(
        "delete pod checkout-7d9-a of deployment checkout in namespace shop (phase Running);"
        " its replica set replaces it",
        {"pod": "checkout-7d9-a", "uid": "uid-shop-checkout-7d9-a", "deployment": "checkout"},
    )
    async with harness.services.store.transaction() as tx:
        waiting = await requests.insert(
            tx,
            action="kubernetes.delete_pod",
            service="checkout",
            params={"pod": "checkout-7d9-a"},
            risk="low",
            preview=older,
            requested_by=REQUESTER,
            now=now,
            expires_at=now + timedelta(minutes=15),
            approvals_needed=1,
            incident_id=None,
            channel_id=None,
            origin="command",
            request_key=None,
        )
    for typed in ("pods=checkout-7d9-a", "pod=checkout-7d9-a", "checkout-7d9-a"):
        answer, posted = await request(harness, f"kubernetes.delete_pod checkout {typed}")
        assert posted is None, (typed, answer)
        assert f"request #{waiting.id} asks for the same change" in answer, answer
    # Another pod, or that pod with another, is another change.
    _, other = await request(
        harness, "kubernetes.delete_pod checkout pods=checkout-7d9-a,checkout-7d9-b"
    )
    assert other is not None
    # Approved after the upgrade, it deletes that pod, with the UID its preview read.
    decision = await harness.services.remediation.approve(waiting.id, Actor(APPROVER, "bob"))
    assert decision.started
    await finish(harness, waiting.id)
    assert _deletes(fake) == [
        (
            "/api/v1/namespaces/shop/pods/checkout-7d9-a",
            {"preconditions": {"uid": "uid-shop-checkout-7d9-a"}},
        )
    ]
    done = await harness.services.remediation.get(waiting.id)
    assert done.status.value == "succeeded" and done.outcome == "deleted pod checkout-7d9-a"


async def test_a_request_for_one_pod_is_stored_as_the_release_before_runs_it(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    # During a rolling upgrade a replica of the release before may take the approval and
    # run the request. It reads `pod=` and its preview's `pod` and `uid`: stored as `pods=`
    # with a list of pods in its preview, the approved request was closed there as "nothing
    # changed" (pods: an unexpected field). One pod is stored as it was; several cannot be.
    fake = fake_kubernetes
    harness = await _harness(make_harness, fake)
    _, message = await request(harness, "kubernetes.delete_pod checkout pods=checkout-7d9-a")
    assert message is not None
    made = await harness.services.remediation.get(request_id(message))
    assert made.params == {"pod": "checkout-7d9-a"}
    assert made.preview.facts["pod"] == "checkout-7d9-a"
    assert made.preview.facts["uid"] == "uid-shop-checkout-7d9-a"
    # This release runs it as before.
    await click(harness, message, user=APPROVER)
    await finish(harness, request_id(message))
    assert _deletes(fake) == [
        (
            "/api/v1/namespaces/shop/pods/checkout-7d9-a",
            {"preconditions": {"uid": "uid-shop-checkout-7d9-a"}},
        )
    ]
    done = await harness.services.remediation.get(request_id(message))
    assert done.status.value == "succeeded" and done.outcome == "deleted pod checkout-7d9-a"
