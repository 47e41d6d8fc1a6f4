"""A fix suggested by the diagnosis of an incident without a war room (P2/P3: its messages live
in the shared announcement channel) is that incident's request: resolving the incident closes
it, as for a war room's. It used to carry no incident, so an approval given after the incident
was resolved still restarted production. End to end through the Slack double, signed clicks,
on the fake Kubernetes API server."""

from __future__ import annotations

import json
from typing import Any

from bot.incidents.schemas import DeclareIncident
from bot.models import Actor, Severity
from bot.slack import diagnosis_blocks as views
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import ANNOUNCE, reply
from tests.fake_kubernetes import FakeKubernetes, deployment, pod
from tests.harness import BotHarness
from tests.remediation_helpers import (
    APPROVER,
    REQUESTER,
    click,
    final_update,
    finish,
    remediation_policy,
    request_id,
    request_messages,
)
from tests.waiting import until

SERVICES = {
    "checkout": {
        "kubernetes": {
            "context": "test",
            "namespace": "shop",
            "deployments": ["checkout"],
            "min_replicas": 2,
            "max_replicas": 12,
        }
    }
}
RESTART = "kubernetes.restart"


def _crash_looping(fake: FakeKubernetes) -> None:
    """checkout with one pod in CrashLoopBackOff: the diagnosis suggests a restart."""
    fake.state.add(deployment("checkout", namespace="shop", replicas=2, ready=1))
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
        )
    )


def _restarts(fake: FakeKubernetes) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.requests if r.method in ("PATCH", "DELETE")]


def _summaries(harness: BotHarness) -> list[dict[str, Any]]:
    return [
        c.response["message"] | {"channel": c.response["channel"]}
        for c in harness.double.calls_to("chat.postMessage")
        if c.ok
        and str(c.params.get("text", "")).startswith("Diagnosis of")
        and not c.params.get("thread_ts")
    ]


def _button(summary: dict[str, Any], action: str) -> dict[str, Any]:
    [button] = [
        e
        for b in summary["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if json.loads(e["value"])["a"] == action
    ]
    return button


async def _press(harness: BotHarness, summary: dict[str, Any], value: str) -> dict[str, Any]:
    """Press the suggestion button carrying `value`: the request message it posted."""
    before = len(request_messages(harness))
    response = await harness.click(
        _button(summary, RESTART)["action_id"],
        value=value,
        message=summary,
        channel_id=summary["channel"],
        message_ts=summary["ts"],
        user_id=REQUESTER,
    )
    assert response.status == 200
    [answer] = await harness.replies()
    await harness.settle()
    posted = request_messages(harness)
    assert len(posted) == before + 1, answer
    return posted[-1]


async def test_a_fix_suggested_for_a_p2_is_closed_when_the_incident_is_resolved(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    _crash_looping(fake_kubernetes)
    harness = await make_harness("sqlite", policy=remediation_policy(SERVICES))
    declared = await harness.services.incidents.declare(
        DeclareIncident(severity=Severity.P2, title="Checkout errors", services=("checkout",)),
        Actor("U0ALICE"),
    )
    await harness.settle()
    incident = await harness.services.incidents.get(declared.id)
    assert incident.channel_id is None and incident.announce_ts  # no war room: the card only

    # Diagnose from the incident's card in the announcement channel.
    response = await harness.click(
        views.DIAGNOSE_ACTION,
        value=incident.id,
        channel_id=ANNOUNCE,
        message_ts=incident.announce_ts,
        user_id=REQUESTER,
    )
    assert response.status == 200
    [started] = await harness.replies()
    assert started["text"].startswith("Diagnosing `checkout`"), started

    async def posted() -> bool:
        return bool(_summaries(harness))

    await until(posted, "the diagnosis summary to be posted")
    [summary] = _summaries(harness)
    assert summary["channel"] == ANNOUNCE
    value = json.loads(_button(summary, RESTART)["value"])
    assert value["i"] == incident.id  # the button names the incident it was diagnosed for
    # Run from its card, the diagnosis is on its timeline too (the shared channel is no room).
    _, events = await harness.services.incidents.with_timeline(incident.id)
    assert [e.kind for e in events].count("diagnosed") == 1

    message = await _press(harness, summary, _button(summary, RESTART)["value"])
    number = request_id(message)
    assert (await harness.services.remediation.get(number)).incident_id == incident.id

    answer = await reply(harness, f"resolve {incident.id} pods healthy again", user_id="U0ALICE")
    assert "Resolved" in answer or "resolved" in answer, answer
    await harness.settle()

    answer = await click(harness, message, user=APPROVER)
    assert f"{incident.id} was resolved after #{number}" in answer, answer
    assert "nothing was run" in answer
    await finish(harness, number)
    assert _restarts(fake_kubernetes) == []  # production untouched
    closed = await harness.services.remediation.get(number)
    assert closed.status.value == "expired" and closed.outcome == f"{incident.id} was resolved"
    assert f"*Expired*: {incident.id} was resolved before enough approvals" in str(
        final_update(harness, message)["blocks"]
    )

    # A button rendered before buttons named their incident (no "i") still requests: a
    # request of no incident, approved and run as before.
    old = json.dumps({k: v for k, v in value.items() if k != "i"}, separators=(",", ":"))
    legacy = await _press(harness, summary, old)
    assert (await harness.services.remediation.get(request_id(legacy))).incident_id is None
    assert "Running" in await click(harness, legacy, user=APPROVER)
    await finish(harness, request_id(legacy))
    assert _restarts(fake_kubernetes) == [
        "PATCH /apis/apps/v1/namespaces/shop/deployments/checkout"
    ]


async def test_a_suggestion_button_naming_another_incident_is_refused(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    """A button's value is the clicker's to edit: one that named another incident ("i")
    raised its request there (timeline lines in that incident, the request closed by its
    resolution). The server now checks that the named incident's recorded diagnosis
    suggested the action; a forged value requests nothing and changes nothing."""
    _crash_looping(fake_kubernetes)
    harness = await make_harness("sqlite", policy=remediation_policy(SERVICES))
    first = await harness.services.incidents.declare(
        DeclareIncident(severity=Severity.P2, title="Checkout errors", services=("checkout",)),
        Actor("U0ALICE"),
    )
    other = await harness.services.incidents.declare(
        DeclareIncident(severity=Severity.P3, title="Billing slow", services=()),
        Actor("U0ALICE"),
    )
    await harness.settle()
    incident = await harness.services.incidents.get(first.id)
    await harness.click(
        views.DIAGNOSE_ACTION,
        value=incident.id,
        channel_id=ANNOUNCE,
        message_ts=incident.announce_ts,
        user_id=REQUESTER,
    )
    await harness.replies()

    async def posted() -> bool:
        return bool(_summaries(harness))

    await until(posted, "the diagnosis summary to be posted")
    [summary] = _summaries(harness)
    value = json.loads(_button(summary, RESTART)["value"])
    assert value["i"] == incident.id
    _, before = await harness.services.incidents.with_timeline(other.id)

    for named in (other.id, "INC-20991231-999", "not an incident"):
        forged = json.dumps({**value, "i": named}, separators=(",", ":"))
        response = await harness.click(
            _button(summary, RESTART)["action_id"],
            value=forged,
            message=summary,
            channel_id=summary["channel"],
            message_ts=summary["ts"],
            user_id=REQUESTER,
        )
        assert response.status == 200
        [answer] = await harness.replies()
        assert answer["text"].startswith("Nothing requested: this button names"), answer
        assert "suggested kubernetes.restart" in answer["text"]
        await harness.settle()
    assert request_messages(harness) == []
    _, after = await harness.services.incidents.with_timeline(other.id)
    assert after == before  # nothing on the named incident
    async with harness.store.transaction() as tx:
        assert await tx.fetchall("SELECT id FROM remediation_requests") == []

    # The button as posted still requests, for its own incident.
    message = await _press(harness, summary, _button(summary, RESTART)["value"])
    assert (await harness.services.remediation.get(request_id(message))).incident_id == incident.id
