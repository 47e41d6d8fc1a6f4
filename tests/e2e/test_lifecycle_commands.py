"""`/incident ack|update|severity|assign|note|resolve|reopen|list|show|timeline` end to end:
signed slash commands in, the template and the cards out, refusals that change nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.clock import FakeClock
from bot.models import Actor, Status
from bot.slack import blocks
from tests.e2e.incident_helpers import (
    ANNOUNCE,
    count,
    current,
    declare,
    element,
    pinned_summary,
    posts,
    rendered,
    reply,
    stored_state,
    updates,
)
from tests.harness import BotHarness


async def test_status_update_in_the_template_in_the_war_room_with_a_copy_for_p1(
    harness: BotHarness,
) -> None:
    incident = await declare(harness)
    room = incident.channel_id or ""
    # Inside the war room the ID may be left out.
    answer = await reply(
        harness,
        "update identified Bad deploy of checkout eta 30m impact EU card payments fail",
        channel_id=room,
        user_id="U0BOB",
    )
    assert "IDENTIFIED" in answer and f"<#{room}>" in answer
    await harness.settle()

    [in_room] = updates(harness, room)
    [copy] = updates(harness, ANNOUNCE)  # P1: a copy in the announcement channel
    assert in_room.params["blocks"] == copy.params["blocks"]
    text = rendered(in_room)
    for expected in (
        "Incident Update: Checkout API returns 502",
        "*Status*\\nIDENTIFIED",
        "P1 High",
        "*Impact*\\nEU card payments fail",
        "*ETA*\\n<!date^",
        "*Current Status*\\nBad deploy of checkout",
        "*Next Update*\\n<!date^",
        f"*Contact*\\n<#{room}>",
    ):
        assert expected in text, expected

    stored = await current(harness, incident)
    assert stored.status is Status.IDENTIFIED and stored.impact == "EU card payments fail"
    assert stored.eta_at is not None and stored.eta == "in 30 min"
    # The pinned summary and the topic follow; the announcement card too.
    assert "IDENTIFIED" in str(pinned_summary(harness, room)["blocks"])
    assert "IDENTIFIED" in harness.double.topic(room)
    assert "IDENTIFIED" in str(harness.double.messages(ANNOUNCE)[0]["blocks"])
    [entry] = [e async for e in harness.services.audit.entries() if e.action == "incident.update"]
    assert (entry.actor, entry.outcome, entry.args["eta"]) == ("U0BOB", "ok", "30 min")


async def test_refusals_are_clear_and_change_nothing(harness: BotHarness) -> None:
    incident = await declare(harness)
    room = incident.channel_id or ""
    await reply(harness, "update identified Bad deploy", channel_id=room)
    await harness.settle()
    before = await stored_state(harness)
    messages = len(harness.double.calls_to("chat.postMessage"))
    audited = await count(harness, "audit_log")

    cases = [
        # An illegal transition: the reason, nothing stored.
        ("update investigating It got worse", room, "moves forward only"),
        # Unknown incident; a command without an ID outside an incident channel.
        ("ack INC-20990101-001", "C0GENERAL", "There is no incident INC-20990101-001"),
        ("ack", "C0GENERAL", "not an incident channel"),
        ("note Rolled back", "C0GENERAL", "Usage: `/incident note"),
        ("update INC-2099 identified x", "C0GENERAL", "not an incident ID"),
        # Bad input: usage, nothing stored.
        ("severity P9", room, "'P9' is not a severity"),
        ("severity P1", room, "already P1"),
        ("assign janitor <@U0BOB>", room, "'janitor' is not a role"),
        # The role's holder already: no second notice, timeline line or topic refresh.
        ("assign commander <@U0ALICE>", room, "<@U0ALICE> is already Commander of"),
        ("update identified Fine eta soon", room, "'soon' is not a duration"),
        ("reopen", room, "not resolved"),
        ("frobnicate", room, "I don't know `/incident frobnicate`"),
    ]
    for text, channel, expected in cases:
        answer = await reply(harness, text, channel_id=channel)
        assert expected in answer, (text, answer)
    await harness.settle()
    assert await stored_state(harness) == before
    assert len(harness.double.calls_to("chat.postMessage")) == messages
    refusals = [
        e.outcome async for e in harness.services.audit.entries() if e.seq > audited
    ]  # every refusal audited, and nothing else
    assert len(refusals) == len(cases)
    assert all(o.startswith(("refused", "rejected")) for o in refusals), refusals


async def test_a_resolved_incident_takes_no_update_until_reopened(harness: BotHarness) -> None:
    incident = await declare(harness)
    room = incident.channel_id or ""
    answer = await reply(harness, f"resolve {incident.id} Rolled back the deploy")
    assert "is resolved" in answer
    await harness.settle()
    [resolved] = updates(harness, room)
    assert "Incident Resolved" in resolved.params["text"]
    assert "Rolled back the deploy" in rendered(resolved)
    summary = pinned_summary(harness, room)
    assert element(summary, blocks.ACK_ACTION) is None  # no buttons on a resolved incident
    assert "RESOLVED" in str(summary["blocks"])

    before = await stored_state(harness)
    for text in ("update monitoring Looks fine", "resolve Again", "ack", "severity P0"):
        answer = await reply(harness, text, channel_id=room)
        assert "resolved" in answer, (text, answer)
    assert await stored_state(harness) == before

    answer = await reply(harness, "reopen Errors are back", channel_id=room)
    assert "open again" in answer
    await harness.settle()
    stored = await current(harness, incident)
    assert stored.status is Status.INVESTIGATING and stored.resolved_at is None
    assert "Incident Reopened" in updates(harness, room)[-1].params["text"]
    assert element(pinned_summary(harness, room), blocks.ACK_ACTION) is not None


async def test_a_reopened_incident_promises_no_eta_from_before_its_resolution(
    harness: BotHarness,
) -> None:
    # The ETA given before the resolution was for the fix that was made: the reopening's
    # announcement (copied to the announcement channel) must not promise it again.
    incident = await declare(harness)
    room = incident.channel_id or ""
    await reply(harness, "update identified Bad deploy eta 30m", channel_id=room)
    await reply(harness, "resolve Rolled back", channel_id=room)
    assert "open again" in await reply(harness, "reopen Errors are back", channel_id=room)
    await harness.settle()
    stored = await current(harness, incident)
    assert stored.eta_at is None and stored.eta == ""
    reopened = rendered(updates(harness, room)[-1])
    assert "Errors are back" in reopened and "Unknown yet" in reopened, reopened
    assert "Unknown yet" in str(pinned_summary(harness, room)["blocks"])


async def test_an_eta_the_incident_outlived_is_said_to_have_passed(make_harness) -> None:
    # An update that gives no ETA keeps the last one: past it, the update (copied to the
    # announcement channel) promised a fix time already gone, as if it were still ahead.
    clock = FakeClock(datetime.now(UTC))
    harness = await make_harness("sqlite", clock=clock)
    incident = await declare(harness)
    room = incident.channel_id or ""
    await reply(harness, "update identified Bad deploy eta 30m", channel_id=room)
    await reply(harness, "update identified Rolling back", channel_id=room)
    clock.advance(minutes=45)
    await reply(harness, "update monitoring Rolled back, watching", channel_id=room)
    await harness.settle()
    given, kept, outlived = [rendered(u) for u in updates(harness, ANNOUNCE)]
    assert "(passed)" not in given and "(passed)" not in kept, kept
    assert "(passed)" in outlived, outlived


async def test_ack_severity_assign_and_note(harness: BotHarness) -> None:
    incident = await declare(harness)
    room = incident.channel_id or ""

    assert "You acknowledged" in await reply(harness, "ack", channel_id=room, user_id="U0BOB")
    again = await reply(harness, f"ack {incident.id}", user_id="U0CAROL")
    assert "already acknowledged by <@U0BOB>" in again

    assert "P0 Critical" in await reply(harness, "severity p0", channel_id=room)
    answer = await reply(harness, "assign tech-lead <@U0DAVE|dave>", channel_id=room)
    assert "<@U0DAVE> is now Tech lead" in answer
    assert "plain text" in await reply(harness, "assign sme @erin", channel_id=room)
    assert "timeline" in await reply(harness, "note Canary rolled back at 14:05", channel_id=room)
    await harness.settle()

    stored = await current(harness, incident)
    assert stored.acknowledged_by == "U0BOB" and stored.severity.value == "P0"
    assert stored.roles == {"commander": "U0ALICE", "tech-lead": "U0DAVE"}
    assert "U0DAVE" in harness.double.members(room)  # the new role holder is invited
    assert "P0 Critical" in harness.double.topic(room)
    notices = [c.params["text"] for c in posts(harness, room)]
    assert ":eyes: Acknowledged by <@U0BOB>" in notices
    assert ":memo: Note from <@U0ALICE>: Canary rolled back at 14:05" in notices
    assert any(text.startswith("Severity Changed") for text in notices)
    summary = str(pinned_summary(harness, room)["blocks"])
    assert "Tech lead: <@U0DAVE>" in summary and "P0 Critical" in summary
    kinds = [e.kind for e in await harness.services.incidents.timeline(incident.id)]
    for kind in ("acknowledged", "severity_changed", "assigned", "noted"):
        assert kinds.count(kind) == 1, kind


async def test_list_show_and_timeline(harness: BotHarness) -> None:
    first = await declare(harness)
    second = await declare(harness, "declare P3 Typo on the status page")
    await reply(harness, f"resolve {second.id} Fixed the typo")

    await harness.command("list")
    [listed] = await harness.replies()
    assert first.id in str(listed["blocks"]) and second.id not in str(listed["blocks"])
    await harness.command("list all")
    [listed] = await harness.replies()
    assert first.id in str(listed["blocks"]) and second.id in str(listed["blocks"])

    room = first.channel_id or ""
    await harness.command("show", channel_id=room)
    [shown] = await harness.replies()
    assert shown["response_type"] == "ephemeral" and first.id in shown["text"]
    assert element(shown, blocks.ACK_ACTION) is not None
    assert element(shown, blocks.RETRY_WAR_ROOM_ACTION) is None  # the room is there

    await harness.command("timeline", channel_id=room)
    [timeline] = await harness.replies()
    text = str(timeline["blocks"])
    assert "Declared P1 by <@U0ALICE>" in text and f"War room <#{room}> opened" in text


@pytest.mark.parametrize("entries", [3, 110])
async def test_a_long_timeline_fits_one_message(harness: BotHarness, entries: int) -> None:
    incident = await declare(harness, "declare P3 Slow dashboard")
    for n in range(entries):
        # About 1,100 characters a line: two lines a section, so 110 do not fit.
        await harness.services.incidents.add_note(
            incident.id, Actor(user_id="U0BOB"), text=f"step {n} " + "x" * 1000, effects=()
        )
    await harness.command(f"timeline {incident.id}")
    [timeline] = await harness.replies()
    assert len(timeline["blocks"]) <= 50
    assert f"step {entries - 1} " in str(timeline["blocks"])  # the newest is always shown
    assert ("earlier entries" in str(timeline["blocks"])) == (entries > 100)
