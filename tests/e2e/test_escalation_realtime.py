"""Escalation in real time: the bot over signed HTTP, durations of seconds, the Slack double.

Policy: level 2 after 2 s, acknowledgement within 3 s (tests/escalation_env.SECONDS_POLICY).
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from bot.console.workspace import RecordedCall, SlackDouble
from bot.escalation import ReminderKind
from bot.policy import parse_policy
from bot.reminders import ReminderStatus
from bot.slack.blocks import ACK_ACTION
from tests.e2e.conftest import HarnessFactory
from tests.escalation_env import BOB, SECONDS_POLICY, seconds_policy
from tests.harness import BotHarness

pytestmark = pytest.mark.slow  # waits on the wall clock: durations of seconds


async def wait_for_post(
    double: SlackDouble, text: str, timeout: float, *, incident_id: str = ""
) -> RecordedCall:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for call in double.calls_to("chat.postMessage"):
            posted = str(call.params.get("text", ""))
            if call.ok and text in posted and incident_id in posted:
                return call
        await asyncio.sleep(0.02)
    raise AssertionError(f"no message with {text!r} {incident_id} within {timeout} s")


def texts(harness: BotHarness, containing: str) -> list[str]:
    return [
        str(call.params["text"])
        for call in harness.double.calls_to("chat.postMessage")
        if call.ok and containing in str(call.params.get("text", ""))
    ]


async def _declare(harness: BotHarness, title: str = "Checkout down") -> str:
    response = await harness.command(f"declare P1 {title}", user_id="U0ALICE")
    assert response.status == 200
    await harness.replies()
    [incident] = [i for i in await harness.services.incidents.list() if i.title == title]
    return incident.id


async def test_level_two_fires_at_its_due_time_never_early(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness("sqlite", policy=seconds_policy())
    harness.double.add_usergroup("S0SRE", ["U0SRE1", "U0LEAD"])
    incident_id = await _declare(harness)
    incident = await harness.services.incidents.get(incident_id)
    due = incident.declared_at + timedelta(seconds=2)

    page = await wait_for_post(harness.double, "Escalation level 2", timeout=10)
    assert page.time >= due.timestamp()
    [fired] = [
        r
        for r in await harness.services.escalation.reminders_for(incident_id)
        if r.kind == ReminderKind.PAGE and r.level == 2
    ]
    assert fired.status is ReminderStatus.FIRED and fired.fired_at is not None
    # Never early. How late (milliseconds here) is measured by bench/escalation_load.py.
    assert due <= fired.fired_at

    breach = await wait_for_post(harness.double, "missed its acknowledgement", timeout=10)
    assert breach.time >= incident.declared_at.timestamp() + 3
    await harness.settle()
    assert len(texts(harness, "Escalation level 1")) == 1
    assert len(texts(harness, "Escalation level 2")) == 1
    assert len(texts(harness, "You are paged (escalation level 2)")) == 2  # U0LEAD, U0SRE1


async def test_an_ack_before_the_deadline_stops_the_page(make_harness: HarnessFactory) -> None:
    # Level 2 and the ack target 4 s in, not 2 and 3: the click below comes 0.1-0.5 s in,
    # and 2 s left a busy machine's stalls too little room (one of 1.2 s and the clock paged).
    policy = SECONDS_POLICY.replace("P1: {ack_within: 3,", "P1: {ack_within: 4,")
    policy = policy.replace("P2: {ack_within: 3,", "P2: {ack_within: 5,")
    policy = policy.replace("{after: 2,", "{after: 4,")
    harness = await make_harness("sqlite", policy=parse_policy(policy, source="<policy>"))
    incident_id = await _declare(harness)
    # The on-call engineer clicks Acknowledge on the page they got by DM, at once.
    dm = await wait_for_post(harness.double, "You are paged (escalation level 1)", timeout=10)
    channel, ts = str(dm.response["channel"]), str(dm.response["ts"])
    [message] = [m for m in harness.double.messages(channel) if m["ts"] == ts]
    clicked = await harness.click(
        ACK_ACTION, user_id="U0ONCALL", channel_id=channel, message_ts=ts, message=message
    )
    assert clicked.status == 200
    await harness.replies()
    incident = await harness.services.incidents.get(incident_id)
    assert incident.acknowledged_by == "U0ONCALL"

    # A P2 declared now misses its own ack target (5 s) after this one's level 2 and ack
    # target (4 s) came due: when its warning is out, theirs had their chance.
    response = await harness.command("declare P2 Search down", user_id="U0ALICE")
    assert response.status == 200
    await harness.replies()
    [later] = [i.id for i in await harness.services.incidents.list() if i.title == "Search down"]
    await wait_for_post(harness.double, "missed its acknowledgement", 10, incident_id=later)
    await harness.settle()
    assert [t for t in texts(harness, "Escalation level 2") if incident_id in t] == []
    assert [t for t in texts(harness, "missed its acknowledgement") if incident_id in t] == []
    statuses = {
        (r.kind, r.level): r.status
        for r in await harness.services.escalation.reminders_for(incident_id)
    }
    assert statuses[(ReminderKind.PAGE, 2)] is ReminderStatus.CANCELLED
    assert statuses[(ReminderKind.ACK_BREACH, 0)] is ReminderStatus.CANCELLED


async def test_escalate_and_oncall_commands(make_harness: HarnessFactory) -> None:
    # Level 2 an hour in, not 2 s: on a busy machine the acknowledgement below could come
    # after it, and the clock, not /escalate, paged level 2.
    policy = SECONDS_POLICY.replace("{after: 2,", "{after: 3600,")
    harness = await make_harness("sqlite", policy=parse_policy(policy, source="<policy>"))
    incident_id = await _declare(harness)
    await harness.services.incidents.acknowledge(incident_id, BOB)  # no paging by the clock

    await harness.command("escalate", channel_id="C0GENERAL")
    [reply] = await harness.replies()
    assert "not an incident channel" in reply["text"]

    await harness.command(f"escalate {incident_id.lower()} the database team is needed")
    [reply] = await harness.replies()
    assert reply["response_type"] == "ephemeral"
    assert f"Escalated *{incident_id}* to level 2 of 2" in reply["text"]
    page = await wait_for_post(harness.double, "Escalation level 2", timeout=10)
    assert "escalated it by hand: the database team is needed" in page.params["text"]
    entries = [e async for e in harness.services.audit.entries(incident_id=incident_id)]
    assert ("escalation.page", "U0ALICE", "ok") in [(e.action, e.actor, e.outcome) for e in entries]

    await harness.command(f"escalate {incident_id}")
    [reply] = await harness.replies()
    assert "already paged every escalation level" in reply["text"]

    status, body = await harness.command("", command="/oncall")
    assert status == 200 and body["response_type"] == "ephemeral"
    assert "Level 2, after 1 h: <@U0LEAD> <!subteam^S0SRE>" in body["text"]
    status, body = await harness.command("P7", command="/oncall")
    assert "'P7' is not a severity" in body["text"] and "Usage: `/oncall" in body["text"]
