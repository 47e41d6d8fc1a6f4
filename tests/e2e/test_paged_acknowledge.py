"""Whoever an escalation level pages may acknowledge the page, even when the policy's
responders (a user group, say) leave them out: the Acknowledge button of the page woke them
up, and refusing it let the pages go on to the next level."""

from __future__ import annotations

from bot.slack import blocks
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import current, declare, element, policy_with
from tests.waiting import until


async def test_the_paged_on_call_acknowledges_from_the_page_dm(
    make_harness: HarnessFactory,
) -> None:
    # Responders are one person; the escalation pages U0ONCALL, who is not among them.
    roles = {"responders": ["U0ALICE"], "approvers": ["U0ENGLEAD"]}
    harness = await make_harness(policy=policy_with(roles=roles))
    incident = await declare(harness)
    opened = await harness.double.wait_for("conversations.open")
    dm = str(opened[0].response["channel"]["id"])
    await until(lambda: harness.double.messages(dm), "the page by DM")
    [page] = harness.double.messages(dm)
    assert element(page, blocks.ACK_ACTION) is not None

    # Someone nobody paged, and no responder, is still refused.
    await harness.click(blocks.ACK_ACTION, value=incident.id, user_id="U0MALLORY")
    [refused] = await harness.replies()
    assert "Only responders" in refused["text"]
    assert (await current(harness, incident)).acknowledged_at is None

    await harness.click(
        blocks.ACK_ACTION, message=page, channel_id=dm, user_id="U0ONCALL", message_ts=page["ts"]
    )
    [answer] = await harness.replies()
    assert "You acknowledged" in answer["text"], answer
    assert (await current(harness, incident)).acknowledged_by == "U0ONCALL"
