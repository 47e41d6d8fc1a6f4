"""`/remediate` on the fake Kubernetes API server: restart, scale and roll back after another
person's approval, the objects changed as Kubernetes records them; the request message
updated in place, the outcome in its thread, every step audited."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.errors import StoreUnavailable
from bot.models import Actor
from bot.remediation.storage import Request
from bot.store import Tx
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import declare, reply, updates
from tests.fake_kubernetes import FakeKubernetes, deployment, pod
from tests.harness import BotHarness
from tests.remediation_helpers import (
    APPROVER,
    OUTSIDER,
    REQUESTER,
    SECOND,
    audit_actions,
    click,
    final_update,
    finish,
    remediation_policy,
    request,
    request_id,
    request_messages,
    thread_replies,
)

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


async def _harness(make_harness: HarnessFactory, fake: FakeKubernetes, **roles: Any) -> BotHarness:
    fake.state.add(deployment("checkout", namespace="shop", replicas=3))
    return await make_harness("sqlite", policy=remediation_policy(SERVICES, **roles))


def _deployment(fake: FakeKubernetes) -> dict[str, Any]:
    return fake.state.deployments[("shop", "checkout")]


def _writes(fake: FakeKubernetes) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.requests if r.method in ("PATCH", "DELETE")]


async def test_scale_runs_once_after_another_persons_approval(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    harness = await _harness(make_harness, fake_kubernetes)
    answer, message = await request(harness, "kubernetes.scale checkout replicas=6")
    assert message is not None, answer
    assert "scale deployment checkout in namespace shop from 3 to 6 replicas" in str(
        message["blocks"]
    )
    assert "Approve" in str(message["blocks"]) and "confirm" in str(message["blocks"])
    assert _writes(fake_kubernetes) == []  # the dry run changed nothing

    assert "someone else must approve" in await click(harness, message, user=REQUESTER)
    assert "not an approver" in await click(harness, message, user=OUTSIDER)
    assert "Running" in await click(harness, message, user=APPROVER)
    await finish(harness)

    scaled = _deployment(fake_kubernetes)
    assert scaled["spec"]["replicas"] == 6 and scaled["metadata"]["generation"] == 2
    assert _writes(fake_kubernetes) == [
        "PATCH /apis/apps/v1/namespaces/shop/deployments/checkout/scale"
    ]
    final = final_update(harness, message)
    assert "Succeeded" in str(final["blocks"]) and "actions" not in str(
        [b["type"] for b in final["blocks"]]
    )
    [outcome] = thread_replies(harness, message)
    assert "scaled checkout from 3 to 6" in outcome and "6 replicas wanted" in outcome

    assert "already succeeded" in await click(harness, message, user=SECOND)
    actions = await audit_actions(harness)
    assert [a for a, _, o in actions if o == "ok"] == [
        "remediation.request",
        "remediation.dry_run",
        "remediation.approve",
        "remediation.start",
    ]
    refusals = [(a, who) for a, who, o in actions if o.startswith("refused")]
    assert refusals == [
        ("remediation.approve", REQUESTER),
        ("remediation.approve", OUTSIDER),
        ("remediation.approve", SECOND),
    ]
    assert ("remediation.outcome", "chatops-bot", "succeeded") in actions


async def test_restart_and_rollback_record_revisions_as_kubernetes_does(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    harness = await _harness(make_harness, fake_kubernetes)
    first_template = copy.deepcopy(_deployment(fake_kubernetes)["spec"]["template"])

    _, message = await request(harness, "kubernetes.restart checkout")
    assert message is not None
    assert "revision 1 -&gt; 2" in str(message["blocks"]) or "revision 1 -> 2" in str(
        message["blocks"]
    )
    await click(harness, message, user=APPROVER)
    await finish(harness)
    restarted = _deployment(fake_kubernetes)
    annotations = restarted["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in annotations
    assert restarted["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert len(fake_kubernetes.state.replica_sets) == 2

    # Roll back is high risk: two approvers other than the requester.
    _, message = await request(harness, "kubernetes.rollback checkout")
    assert message is not None
    assert "back from revision 2" in str(message["blocks"]) and "to revision 1" in str(
        message["blocks"]
    )
    assert "needs 1 more" in await click(harness, message, user=APPROVER)
    assert "already approved" in await click(harness, message, user=APPROVER)
    assert "Running" in await click(harness, message, user=SECOND)
    await finish(harness)
    rolled = _deployment(fake_kubernetes)
    assert rolled["spec"]["template"] == first_template  # the restart annotation is gone
    assert rolled["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert len(fake_kubernetes.state.replica_sets) == 2  # revision 1's set, reused as 3
    [patch] = [r for r in fake_kubernetes.requests if r.method == "PATCH"][-1:]
    assert isinstance(patch.body, list) and patch.body[0]["path"] == "/spec/template"


async def test_twenty_simultaneous_approvals_run_the_action_once(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    harness = await _harness(make_harness, fake_kubernetes, approvers=["S0SRE"])
    harness.double.add_usergroup("S0SRE", [f"U0SRE{n:02d}" for n in range(20)])
    _, message = await request(harness, "kubernetes.scale checkout 4")
    assert message is not None
    clicks = [
        harness.click(
            "remediation_approve",
            message=message,
            channel_id=message["channel"],
            message_ts=message["ts"],
            user_id=f"U0SRE{n:02d}",
        )
        for n in range(20)
    ]
    assert {r.status for r in await asyncio.gather(*clicks)} == {200}
    answers = [a["text"] for a in await harness.replies(20)]
    await finish(harness)
    assert sum("Running" in a for a in answers) == 1
    assert sum("already" in a for a in answers) == 19
    scale_writes = [w for w in _writes(fake_kubernetes) if w.endswith("/scale")]
    assert len(scale_writes) == 1
    actions = await audit_actions(harness)
    assert [a for a, _, _ in actions].count("remediation.start") == 1


async def test_deny_expire_and_drift(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    harness = await _harness(make_harness, fake_kubernetes)
    rs = fake_kubernetes.state.replica_set_of("shop", "checkout")
    fake_kubernetes.state.add(pod("checkout-abc", namespace="shop", owner=rs))

    _, message = await request(harness, "kubernetes.delete_pod checkout checkout-abc")
    assert message is not None
    assert "Denied" in await click(harness, message, user=SECOND, verb="deny")
    assert "already denied" in await click(harness, message, user=APPROVER)
    await finish(harness)
    assert "Denied" in str(final_update(harness, message)["blocks"])

    # The replicas move between the preview and the approval: nothing more than previewed.
    _, message = await request(harness, "kubernetes.scale checkout 5")
    assert message is not None
    _deployment(fake_kubernetes)["spec"]["replicas"] = 4
    await click(harness, message, user=APPROVER)
    await finish(harness)
    assert _deployment(fake_kubernetes)["spec"]["replicas"] == 4
    [outcome] = thread_replies(harness, message)
    assert "replicas moved from 3 to 4" in outcome
    assert "Failed" in str(final_update(harness, message)["blocks"])

    # Outside the catalog's bounds: refused at once, nothing posted.
    answer, posted = await request(harness, "kubernetes.scale checkout 50")
    assert posted is None and "outside the catalog's bounds (2 to 12)" in answer
    assert _writes(fake_kubernetes) == []


async def test_a_parameter_given_twice_is_ambiguous_and_changes_nothing(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    # Issue 15: `replicas=2 replicas=5` was read as 5 (the last one won, silently).
    harness = await _harness(make_harness, fake_kubernetes)
    for text in (
        "kubernetes.scale checkout replicas=3 replicas=5",
        "kubernetes.scale checkout 4 replicas=5",
    ):
        answer, posted = await request(harness, text)
        assert posted is None and "'replicas' is given more than once" in answer
    assert _writes(fake_kubernetes) == []


@pytest.mark.parametrize(
    ("command", "text"),
    [
        ("/remediate", "kubernetes.scale checkout " + "replicas=4 " * 450),
        ("/remediate", "kubernetes.scale checkout\x00 replicas=4"),
        ("/oncall", "P1" + " " * 4_500),
        ("/oncall", "P1\x00"),
    ],
)
async def test_every_command_keeps_the_length_cap_and_refuses_control_characters(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes, command: str, text: str
) -> None:
    # Issue 15: the 4,000-character cap and the control-character refusal held for
    # /incident only.
    harness = await _harness(make_harness, fake_kubernetes)
    response = await harness.command(text, command=command, user_id=REQUESTER)
    assert response.status == 200
    body = str(response.body)
    assert "a command may be at most 4,000" in body or "control character (U+0000)" in body
    assert harness.double.responses == [] and request_messages(harness) == []


async def test_a_restart_approved_after_a_new_deploy_leaves_the_new_revision_alone(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    # The preview said "revision 1 -> 2"; a deploy made revision 2 before the approval. The
    # restart used to roll out revision 3 of a template the approver never saw.
    harness = await _harness(make_harness, fake_kubernetes)
    _, message = await request(harness, "kubernetes.restart checkout")
    assert message is not None
    fake_kubernetes.state.new_revision("shop", "checkout", "shop/checkout:2.0")
    assert "Running" in await click(harness, message, user=APPROVER)
    await finish(harness, request_id(message))

    assert (
        _deployment(fake_kubernetes)["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        == "2"
    )
    assert _writes(fake_kubernetes) == []
    [outcome] = thread_replies(harness, message)
    assert "moved from revision 1 to 2" in outcome
    assert "Failed" in str(final_update(harness, message)["blocks"])


async def test_a_scale_made_then_unreadable_is_reported_as_made(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    # The scale went through and the read back answered 500: the request said "Failed"
    # ("kubernetes: ... 500"), and an on-call engineer would scale again by hand.
    harness = await _harness(make_harness, fake_kubernetes)
    _, message = await request(harness, "kubernetes.scale checkout replicas=6")
    assert message is not None
    fake_kubernetes.fail["GET /apis/apps/v1/namespaces/shop/deployments/checkout"] = 500
    assert "Running" in await click(harness, message, user=APPROVER)
    await finish(harness, request_id(message))

    assert _deployment(fake_kubernetes)["spec"]["replicas"] == 6
    [outcome] = thread_replies(harness, message)
    assert "scaled checkout from 3 to 6 replicas" in outcome
    assert "could not be read back" in outcome
    assert "Succeeded" in str(final_update(harness, message)["blocks"])
    actions = await audit_actions(harness)
    assert ("remediation.outcome", "chatops-bot", "succeeded") in actions


async def test_a_scale_kubernetes_refuses_with_429_changes_nothing_and_says_so(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    harness = await _harness(make_harness, fake_kubernetes)
    _, message = await request(harness, "kubernetes.scale checkout replicas=6")
    assert message is not None
    fake_kubernetes.fail["PATCH /apis/apps/v1/namespaces/shop/deployments/checkout/scale"] = 429
    assert "Running" in await click(harness, message, user=APPROVER)
    await finish(harness, request_id(message))

    assert _deployment(fake_kubernetes)["spec"]["replicas"] == 3
    [outcome] = thread_replies(harness, message)
    assert "429" in outcome
    assert "Failed" in str(final_update(harness, message)["blocks"])
    actions = await audit_actions(harness)
    assert ("remediation.outcome", "chatops-bot", "failed") in actions


async def test_a_request_of_an_incident_resolved_since_is_closed_not_approved(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    # Requested in the war room, the incident resolved, then Approve: it scaled a service
    # whose incident was over. Now the click closes it; one asked after resolving still runs.
    harness = await _harness(make_harness, fake_kubernetes)
    incident = await declare(harness, "declare P1 Checkout slow")
    room = incident.channel_id
    assert room is not None
    _, message = await request(harness, "kubernetes.scale checkout replicas=6", channel=room)
    assert message is not None
    await reply(harness, "resolve traffic back to normal", channel_id=room)
    await harness.settle()

    answer = await click(harness, message, user=APPROVER)
    assert f"{incident.id} was resolved after #{request_id(message)}" in answer
    assert "nothing was run" in answer
    await finish(harness, request_id(message))
    assert _deployment(fake_kubernetes)["spec"]["replicas"] == 3 and _writes(fake_kubernetes) == []
    assert (
        f"*Expired*: {incident.id} was resolved before enough approvals; nothing was changed."
        in str(final_update(harness, message)["blocks"])
    )
    assert "already expired" in await click(harness, message, user=SECOND)
    actions = await audit_actions(harness)
    assert [a for a, _, _ in actions].count("remediation.expire") == 1
    assert any(a == "remediation.approve" and o.startswith("refused: ") for a, _, o in actions)

    # Scaling back down after the incident, asked in its channel, is a request of its own.
    _, later = await request(harness, "kubernetes.scale checkout replicas=4", channel=room)
    assert later is not None
    assert "Running" in await click(harness, later, user=APPROVER)
    await finish(harness, request_id(later))
    assert _deployment(fake_kubernetes)["spec"]["replicas"] == 4


async def test_a_request_too_few_others_may_approve_is_refused_at_once(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    # Bob, the only other approver, asks for a rollback needing two: it was posted and sat
    # for 15 minutes with nobody able to approve it, at 3 a.m.
    harness = await _harness(make_harness, fake_kubernetes, approvers=[APPROVER, SECOND])
    answer, posted = await request(harness, "kubernetes.rollback checkout", user=APPROVER)
    assert posted is None
    assert answer.endswith(
        "Nothing requested: kubernetes.rollback needs 2 approvals from people other than you,"
        " and only 1 other person may approve it. Ask someone who may to request it, or fix"
        " the policy's approvers."
    )
    answer, posted = await request(harness, "kubernetes.scale checkout 4", user=REQUESTER)
    assert posted is not None, answer  # Bob or Carol can approve this one

    harness = await _harness(make_harness, fake_kubernetes, approvers=[])
    answer, posted = await request(harness, "kubernetes.scale checkout 4")
    assert posted is None
    assert (
        "needs 1 approval from people other than you, and nobody else may approve it (the"
        " policy lists no approvers)." in answer
    )
    assert _writes(fake_kubernetes) == []
    [(action, _, outcome)] = await audit_actions(harness)  # the refusal, audited
    assert action == "remediation.request" and "needs 1 approval" in outcome, outcome


@pytest.mark.parametrize("replicas", ["1_0", "+4", "-1", "٤", "６"])
async def test_a_count_is_digits_only_and_anything_else_changes_nothing(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes, replicas: str
) -> None:
    # `replicas=1_0` was read as 10 (Python's digit separators) and posted for approval: a
    # typo that scales. '-1' and '٤' were refused in pydantic's words ("valid integer").
    harness = await _harness(make_harness, fake_kubernetes)
    answer, posted = await request(harness, f"kubernetes.scale checkout replicas={replicas}")
    assert posted is None
    assert (
        f"replicas: '{replicas}' is not a whole number in digits 0-9: give it like replicas=6."
        in answer
    )
    assert _writes(fake_kubernetes) == []


async def test_a_change_kubernetes_never_answers_is_of_unknown_outcome_not_failed(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    # The scale was sent and the API server did not answer within the entry's timeout: the
    # request said "Failed", and whoever read it would scale again by hand.
    services = {"checkout": {"kubernetes": {**SERVICES["checkout"]["kubernetes"], "timeout": 1}}}
    fake_kubernetes.state.add(deployment("checkout", namespace="shop", replicas=3))
    harness = await make_harness("sqlite", policy=remediation_policy(services))
    _, message = await request(harness, "kubernetes.scale checkout replicas=6")
    assert message is not None
    fake_kubernetes.hang_paths.add("PATCH /apis/apps/v1/namespaces/shop/deployments/checkout/scale")
    assert "Running" in await click(harness, message, user=APPROVER)
    await finish(harness, request_id(message))

    assert (await harness.services.remediation.get(request_id(message))).status.value == ("unknown")
    final = str(final_update(harness, message)["blocks"])
    assert "Outcome unknown" in final and "may or may not have been made" in final
    assert "Failed" not in final
    [outcome] = thread_replies(harness, message)
    assert "*Tried:* no answer in time" in outcome and "*Now:* not known: check it" in outcome
    assert _writes(fake_kubernetes) == [
        "PATCH /apis/apps/v1/namespaces/shop/deployments/checkout/scale"
    ]
    actions = await audit_actions(harness)
    assert ("remediation.outcome", "chatops-bot", "unknown") in actions


async def test_a_request_nobody_approves_expires_when_its_time_is_up(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    # The expiry reminder withdrew itself while it fired: its firing found its claim lost
    # and rolled the expiry back, again at every try. The request waited for ever, its
    # message saying "Approvals: 0 of 1", and a late click was the only thing to close it.
    clock = FakeClock(datetime.now(UTC))
    fake_kubernetes.state.add(deployment("checkout", namespace="shop", replicas=3))
    harness = await make_harness("sqlite", policy=remediation_policy(SERVICES), clock=clock)
    _, message = await request(harness, "kubernetes.scale checkout replicas=6")
    assert message is not None
    clock.advance(minutes=16)
    assert await harness.services.reminders.fire_due() == 1
    await harness.settle()
    expired = await harness.services.remediation.get(1)
    assert expired.status.value == "expired" and expired.outcome == "expired"
    assert "*Expired*" in str(final_update(harness, message)["blocks"])
    actions = await audit_actions(harness)
    assert ("remediation.expire", "chatops-bot", "ok") in actions
    assert "already expired" in await click(harness, message, user=APPROVER)
    assert _writes(fake_kubernetes) == []


async def test_a_request_its_channel_never_shows_is_closed_and_its_requester_told(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    # /remediate in a channel the bot is not in: "Request #1 is posted for approval", then
    # the post failed for good (not_in_channel), logged only. Nobody there could see it, and
    # the requester waited for an approval that could not come.
    harness = await _harness(make_harness, fake_kubernetes)
    harness.double.fail("chat.postMessage", error="not_in_channel", channel="C0GENERAL")
    answer, _ = await request(harness, "kubernetes.scale checkout replicas=6")
    assert "Request #1" in answer
    await harness.settle()
    posts = harness.double.calls_to("chat.postMessage")
    assert not [c for c in posts if c.ok and c.response.get("channel") == "C0GENERAL"]

    closed = await harness.services.remediation.get(1)
    assert closed.status.value == "expired" and closed.outcome == "not posted: not_in_channel"
    dms = [
        str(c.params["text"])
        for c in harness.double.calls_to("chat.postMessage")
        if c.ok and str(c.response.get("channel", "")).startswith("D")
    ]
    assert len(dms) == 1, dms
    assert dms[0].startswith(
        "Remediation #1 (kubernetes.scale on checkout) could not be posted in <#C0GENERAL>"
        " (not_in_channel), so nobody could approve it: it is closed and nothing was changed."
    )
    assert "from 3 to 6 replicas" in dms[0]
    answer = await harness.services.remediation.approve(1, Actor(APPROVER))
    assert answer.refused and "already expired" in answer.refused
    assert _writes(fake_kubernetes) == []
    assert [a for a, _, _ in await audit_actions(harness)].count("remediation.expire") == 1


async def test_a_read_before_the_change_never_answered_is_nothing_changed_not_unknown(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    # The scale was never sent (the read before it timed out), yet the request said
    # "Outcome unknown: it may or may not have been made".
    services = {"checkout": {"kubernetes": {**SERVICES["checkout"]["kubernetes"], "timeout": 1}}}
    fake_kubernetes.state.add(deployment("checkout", namespace="shop", replicas=3))
    harness = await make_harness("sqlite", policy=remediation_policy(services))
    _, message = await request(harness, "kubernetes.scale checkout replicas=6")
    assert message is not None
    fake_kubernetes.hang_paths.add("GET /apis/apps/v1/namespaces/shop/deployments/checkout/scale")
    await click(harness, message, user=APPROVER)
    await finish(harness, request_id(message))

    assert _writes(fake_kubernetes) == []
    assert "Failed" in str(final_update(harness, message)["blocks"])
    [outcome] = thread_replies(harness, message)
    assert "*Done:* nothing changed" in outcome and "(before any change was sent)" in outcome


async def test_the_same_change_asked_twice_is_one_request_to_approve(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    # A double click on a suggestion, or two people pressing it: two approval requests for one
    # change, and whoever approved both forced it twice (or read "Failed" for the second).
    harness = await _harness(make_harness, fake_kubernetes)
    _, first = await request(harness, "kubernetes.scale checkout replicas=6")
    assert first is not None
    answer, again = await request(harness, "kubernetes.scale checkout 6", user=SECOND)
    assert again is None
    assert f"request #{request_id(first)} asks for the same change" in answer
    _, other = await request(harness, "kubernetes.scale checkout replicas=8")
    assert other is not None  # another change is a request of its own
    # Withdrawn by its requester: not "Denied by" them, as if an approver had said no.
    assert "Withdrew #" in await click(harness, first, user=REQUESTER, verb="deny")
    await harness.settle()
    state = str(final_update(harness, first)["blocks"])
    assert f"*Withdrawn* by <@{REQUESTER}>, who asked for it" in state, state
    _, anew = await request(harness, "kubernetes.scale checkout replicas=6")
    assert anew is not None  # nothing waits for it any more


async def test_a_request_whose_service_left_the_catalog_fails_saying_so(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes, tmp_path: Any
) -> None:
    # The bot restarted with a policy that no longer names the service (renamed) while a
    # request waited: approved, its run died on the catalog look-up and it sat "Running" until
    # its watch closed it as "Outcome unknown: the bot stopped while it ran".
    fake_kubernetes.state.add(deployment("checkout", namespace="shop", replicas=3))
    url = f"sqlite:///{tmp_path}/shared.db"
    before = await make_harness("sqlite", database_url=url, policy=remediation_policy(SERVICES))
    _, message = await request(before, "kubernetes.scale checkout replicas=6")
    assert message is not None
    renamed = remediation_policy({"checkout-v2": SERVICES["checkout"]})
    renamed = renamed.model_copy(
        update={"remediation": renamed.remediation.model_validate({"timeout": 2})}
    )
    after = await make_harness("sqlite", database_url=url, policy=renamed, double=before.double)
    await click(after, message, user=APPROVER)
    await finish(after, request_id(message))
    await finish(before, request_id(message))
    done = await after.services.remediation.get(request_id(message))
    assert done.status.value == "failed", done
    assert "No service called 'checkout'" in done.result["after"]
    assert _writes(fake_kubernetes) == []


async def test_the_same_change_asked_at_once_on_postgresql_is_one_request(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    # Two transactions asking for the same change at the same moment each found no request
    # waiting and each made one: the check and the insert now take turns per change.
    fake_kubernetes.state.add(deployment("checkout", namespace="shop", replicas=3))
    harness = await make_harness("postgres", policy=remediation_policy(SERVICES))
    responses = await asyncio.gather(
        *(
            harness.command(
                "kubernetes.scale checkout replicas=6",
                command="/remediate",
                user_id=user,
                channel_id="C0GENERAL",
            )
            for user in (REQUESTER, SECOND, REQUESTER, SECOND)
        )
    )
    assert all(response.status == 200 for response in responses)
    answers = [str(reply["text"]) for reply in await harness.replies(4, timeout=20)]
    await harness.settle()
    async with harness.services.store.transaction() as tx:
        rows = await tx.fetchall("SELECT id FROM remediation_requests")
    assert len(rows) == 1, (rows, answers)
    refused = [a for a in answers if f"request #{rows[0]['id']} asks for the same change" in a]
    assert len(refused) == 3, answers


async def test_a_dry_runs_error_text_is_shown_as_text_never_as_markup(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    # The target's own words (here the API server's reason phrase) reach the refusal: they
    # must not ping the channel nor render as a link.
    harness = await _harness(make_harness, fake_kubernetes)
    base = "GET /apis/apps/v1/namespaces/shop/deployments/checkout"
    for path in (base, base + "/scale"):
        fake_kubernetes.fail[path] = 500
        fake_kubernetes.fail_reason[path] = "<!channel> see <https://evil.example|the runbook>"
    answer, message = await request(harness, "kubernetes.scale checkout replicas=6")
    assert message is None
    assert "the dry run failed" in answer
    assert "&lt;!channel&gt; see &lt;https://evil.example|the runbook&gt;" in answer
    assert "<" not in answer


async def test_a_request_decided_while_its_post_is_retried_then_lost_holds_nothing_back(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    # Withdrawn (as from the App Home) while its channel message waits for a retry, which
    # then fails for good: the refresh of that message has nothing to refresh, and must not
    # retry "not posted yet" for 24 h holding the incident's later messages behind it.
    clock = FakeClock(datetime.now(UTC))
    fake_kubernetes.state.add(deployment("checkout", namespace="shop", replicas=3))
    harness = await make_harness("sqlite", policy=remediation_policy(SERVICES), clock=clock)
    incident = await declare(harness)
    clock.advance(minutes=1)
    await harness.settle()
    room = (await harness.services.incidents.get(incident.id)).channel_id
    assert room
    harness.double.http_error("chat.postMessage", status=503, times=1, channel=room)
    answer, message = await request(harness, "kubernetes.scale checkout replicas=6", channel=room)
    assert "Request #1" in answer and message is None  # its post waits for a retry
    assert not (await harness.services.remediation.deny(1, Actor(REQUESTER))).refused
    harness.double.fail("chat.postMessage", error="not_in_channel", channel=room)
    clock.advance(minutes=1)
    await harness.settle()
    assert (await harness.services.remediation.get(1)).status.value == "denied"

    await reply(harness, "update identified Bad deploy", channel_id=room)
    clock.advance(minutes=1)
    await harness.settle()
    assert len(updates(harness, room)) == 1
    assert await harness.services.dispatcher.pending_count() == 0


async def test_a_request_names_whom_to_ask_but_never_its_requester(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    # The request said "Approvals: 0 of 1 (nobody yet)": at 3 a.m. nobody knew whom to wake.
    harness = await _harness(
        make_harness, fake_kubernetes, approvers=[REQUESTER, APPROVER, "S0SRE"]
    )
    answer, message = await request(harness, "kubernetes.scale checkout replicas=6")
    assert message is not None, answer
    [line] = [
        b["text"]["text"]
        for b in message["blocks"]
        if b["type"] == "section" and "Who may approve" in b["text"]["text"]
    ]
    assert line == (
        f"*Who may approve:* <@{APPROVER}>, <!subteam^S0SRE> (not <@{REQUESTER}>, who asked)"
    )
    assert "Running" in await click(harness, message, user=APPROVER)
    await finish(harness, request_id(message))
    assert "Who may approve" not in str(final_update(harness, message)["blocks"])


async def test_an_action_without_its_service_is_told_what_is_missing(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    # `/remediate kubernetes.scale` at 3 a.m. got the whole usage, not saying what was wrong.
    harness = await _harness(make_harness, fake_kubernetes)
    response = await harness.command("kubernetes.scale", command="/remediate")
    text = str(response.body["text"])
    assert text.startswith(
        "Which service? Name it after the action:"
        " `/remediate kubernetes.scale &lt;service&gt; ...`."
    ), text
    response = await harness.command("<!channel>", command="/remediate")
    assert "<!channel>" not in str(response.body["text"])
    response = await harness.command("help", command="/remediate")
    assert str(response.body["text"]).startswith("Usage:")


async def test_a_request_run_whose_message_was_never_posted_tells_its_outcome_privately(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    # Approved from the App Home while its channel message waited for a retry, which then
    # failed for good: it ran, and its outcome, meant for the message's thread, went nowhere
    # but the App Home. The requester and the approver get it by direct message.
    clock = FakeClock(datetime.now(UTC))
    fake_kubernetes.state.add(deployment("checkout", namespace="shop", replicas=3))
    harness = await make_harness("sqlite", policy=remediation_policy(SERVICES), clock=clock)
    incident = await declare(harness)
    clock.advance(minutes=1)
    await harness.settle()
    room = (await harness.services.incidents.get(incident.id)).channel_id
    assert room
    harness.double.http_error("chat.postMessage", status=503, times=1, channel=room)
    answer, message = await request(harness, "kubernetes.scale checkout replicas=6", channel=room)
    assert "Request #1" in answer and message is None  # its post waits for a retry
    assert not (await harness.services.remediation.approve(1, Actor(APPROVER))).refused
    await finish(harness, 1)
    assert (await harness.services.remediation.get(1)).status.value == "succeeded"
    harness.double.fail("chat.postMessage", error="not_in_channel", channel=room)
    clock.advance(minutes=1)
    await harness.settle()

    def told(user: str) -> list[str]:
        dm = harness.double.state.open_im(user)[0].id
        return [
            str(c.params["text"])
            for c in harness.double.calls_to("chat.postMessage")
            if c.ok and c.response.get("channel") == dm
        ]

    for user in (REQUESTER, APPROVER):
        [said] = told(user)
        assert said.startswith("Remediation #1 :white_check_mark: Succeeded\n*Done:* scaled"), said
        assert "kubernetes.scale on checkout; its request message could not be posted" in said
    assert _deployment(fake_kubernetes)["spec"]["replicas"] == 6
    assert await harness.services.dispatcher.pending_count() == 0


async def test_a_request_that_expired_before_its_post_failed_for_good_tells_its_requester(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    # A rollback needing two approvals, approved once from the App Home while its channel
    # message waited for a retry; it expired, then the post failed for good. Nobody was
    # told: the requester waited for an approval that could never come.
    clock = FakeClock(datetime.now(UTC))
    fake_kubernetes.state.add(deployment("checkout", namespace="shop", replicas=3))
    fake_kubernetes.state.new_revision("shop", "checkout", "shop/checkout:v2")
    harness = await make_harness("sqlite", policy=remediation_policy(SERVICES), clock=clock)
    incident = await declare(harness)
    clock.advance(minutes=1)
    await harness.settle()
    room = (await harness.services.incidents.get(incident.id)).channel_id
    assert room
    harness.double.http_error("chat.postMessage", status=503, times=2, channel=room)
    answer, message = await request(harness, "kubernetes.rollback checkout", channel=room)
    assert "Request #1" in answer and message is None, answer  # its post waits for a retry
    decision = await harness.services.remediation.approve(1, Actor(APPROVER))
    assert not decision.refused and not decision.started
    clock.advance(minutes=16)
    assert await harness.services.reminders.fire_due() >= 1
    await harness.settle()
    assert (await harness.services.remediation.get(1)).status.value == "expired"
    harness.double.fail("chat.postMessage", error="not_in_channel", channel=room)
    clock.advance(minutes=5)
    await harness.settle()

    def told(user: str) -> list[str]:
        dms = harness.double.state.open_im(user)
        return [
            str(c.params["text"])
            for c in harness.double.calls_to("chat.postMessage")
            if c.ok and dms and c.response.get("channel") == dms[0].id
        ]

    for user in (REQUESTER, APPROVER):
        [said] = told(user)
        assert said.startswith(
            "Remediation #1 (kubernetes.rollback on checkout) expired with 1 of 2 approvals;"
            " its request message could not be posted (not_in_channel), so nobody else could"
            " approve it. Nothing was changed."
        ), said
    assert told(SECOND) == []
    assert _writes(fake_kubernetes) == []
    assert await harness.services.dispatcher.pending_count() == 0


async def test_a_pod_is_deleted_only_when_its_deployment_owns_it_not_for_its_labels(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    # A canary deployment outside the catalog labels its pods app=checkout too: the dry run
    # matched the catalogued deployment's selector and offered another deployment's pod
    # (and a bare debug pod) for deletion, while the diagnosis, by ownerReferences, never
    # counts them as the service's.
    harness = await _harness(make_harness, fake_kubernetes)
    state = fake_kubernetes.state
    canary = deployment("checkout-canary", namespace="shop", labels={"app": "checkout", "x": "c"})
    state.add(canary)
    canary_set = state.replica_set_of("shop", "checkout-canary")
    state.add(pod("canary-1", namespace="shop", owner=canary_set))
    state.add(pod("debug", namespace="shop", labels={"app": "checkout"}))  # nobody's
    state.add(pod("checkout-1", namespace="shop", owner=state.replica_set_of("shop", "checkout")))
    for name in ("canary-1", "debug"):
        answer, posted = await request(harness, f"kubernetes.delete_pod checkout {name}")
        assert posted is None, name
        assert f"pod {name} belongs to no catalogued deployment" in answer, answer
    _, message = await request(harness, "kubernetes.delete_pod checkout checkout-1")
    assert message is not None
    assert "delete pod checkout-1 of deployment checkout" in str(message["blocks"])
    assert _writes(fake_kubernetes) == []


class _LostAtTheOutcome:
    """The database lost once, inside the transaction recording a run's outcome."""

    def __init__(self) -> None:
        self.lost = 0

    async def remediation_changed(self, tx: Tx, request: Request, at: datetime) -> None:
        if request.status.is_final and not self.lost:
            self.lost += 1
            raise StoreUnavailable("PostgreSQL is unavailable: server closed the connection")


async def test_an_outcome_the_database_missed_once_is_recorded_when_it_is_back(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    # The scale was made and the database blinked as its outcome was written: the outcome was
    # lost (in no audit entry), the request stayed "running", and its watch later closed it
    # as "outcome unknown: the bot stopped while it ran", which it never did.
    harness = await _harness(make_harness, fake_kubernetes)
    lost = _LostAtTheOutcome()
    harness.services.remediation.changes.listeners.append(lost)
    _, message = await request(harness, "kubernetes.scale checkout replicas=6")
    assert message is not None
    assert "Running" in await click(harness, message, user=APPROVER)
    await finish(harness, request_id(message))

    assert lost.lost == 1 and _deployment(fake_kubernetes)["spec"]["replicas"] == 6
    [outcome] = thread_replies(harness, message)
    assert "scaled checkout from 3 to 6 replicas" in outcome
    assert "Succeeded" in str(final_update(harness, message)["blocks"])
    assert ("remediation.outcome", "chatops-bot", "succeeded") in await audit_actions(harness)


async def test_the_only_deployment_named_or_left_out_is_the_same_change(
    make_harness: HarnessFactory, fake_kubernetes: FakeKubernetes
) -> None:
    # A diagnosis's Restart button names its deployment; `/remediate kubernetes.restart
    # checkout` leaves out the only one: two requests to approve for one restart.
    harness = await _harness(make_harness, fake_kubernetes)
    _, first = await request(harness, "kubernetes.restart checkout deployment=checkout")
    assert first is not None
    answer, again = await request(harness, "kubernetes.restart checkout", user=SECOND)
    assert again is None
    assert f"request #{request_id(first)} asks for the same change" in answer, answer
