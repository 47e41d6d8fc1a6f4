"""War rooms end to end: the channel, its name, invites, topic, pinned summary; failures
reported and retried. Signed HTTP in, Slack calls asserted on the double."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.clock import FakeClock
from bot.console.workspace import SlackDouble
from bot.slack import blocks
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import (
    ANNOUNCE,
    count,
    current,
    declare,
    element,
    pinned_summary,
    policy_with,
    posts,
    rendered,
    reply,
    updates,
)
from tests.harness import BotHarness, openapi_spec

SRE_FIRST = {
    "P0": [{"after": 0, "notify": ["U0ONCALL"]}],
    "P1": [{"after": 0, "notify": ["U0ONCALL", "S0SRE"]}, {"after": "30m", "notify": ["U0LEAD"]}],
    "P2": [{"after": 0, "notify": ["U0ONCALL"]}],
    "P3": [{"after": 0, "notify": ["U0ONCALL"]}],
}


async def test_p1_opens_a_war_room_with_invites_topic_and_pinned_summary(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness("sqlite", policy=policy_with(escalation=SRE_FIRST))
    harness.double.add_usergroup("S0SRE", ["U0CAROL", "U0DAVE"])
    incident = await declare(harness, "declare P1 Checkout API: 502s (EU)!")

    [create] = harness.double.calls_to("conversations.create")
    room = incident.channel_id
    assert room == create.response["channel"]["id"]
    assert create.params["name"] == f"{incident.id.lower()}-checkout-api-502s-eu"
    # The declarer and the first escalation level, its user group expanded.
    assert set(harness.double.members(room)) >= {"U0ALICE", "U0ONCALL", "U0CAROL", "U0DAVE"}
    assert "U0LEAD" not in harness.double.members(room)  # level 2 is not paged yet
    assert harness.double.calls_to("usergroups.users.list")
    topic = harness.double.topic(room)
    assert "P1 High" in topic and "INVESTIGATING" in topic and "<@U0ALICE>" in topic

    summary = pinned_summary(harness, room)
    assert summary["ts"] == incident.summary_ts
    for action in (blocks.ACK_ACTION, blocks.UPDATE_ACTION):
        assert (element(summary, action) or {}).get("value") == incident.id
    # Escalate carries the level (0 or 1: the first page may still be due) and severity the
    # card shows.
    escalate = (element(summary, blocks.ESCALATE_ACTION) or {}).get("value")
    assert escalate in (f"{incident.id}:0:P1", f"{incident.id}:1:P1")
    resolve = element(summary, blocks.RESOLVE_ACTION)
    assert resolve is not None and resolve["style"] == "danger" and "confirm" in resolve
    text = str(summary["blocks"])
    for field in ("Status", "Severity", "Impact", "ETA", "Next Update", "Contact", "Commander"):
        assert field in text

    # The announcement is the same card, now naming the war room as the contact.
    announcement = harness.double.messages(ANNOUNCE)[0]
    assert announcement["ts"] == incident.announce_ts and f"<#{room}>" in str(announcement)

    kinds = [e.kind for e in await harness.services.incidents.timeline(incident.id)]
    assert "war_room_opened" in kinds
    actions = {(e.action, e.outcome) async for e in harness.services.audit.entries()}
    assert {("incident.war_room", "ok"), ("incident.invite", "ok")} <= actions


async def test_p2_has_no_war_room_and_uses_the_announcement_channel(harness: BotHarness) -> None:
    incident = await declare(harness, "declare P2 Search is slow")
    assert incident.channel_id is None
    assert harness.double.calls_to("conversations.create") == []

    answer = await reply(harness, f"update {incident.id} identified Index rebuild eta 1h")
    assert f"<#{ANNOUNCE}>" in answer
    await harness.settle()
    [update] = updates(harness, ANNOUNCE)  # once: the incident channel is the announcement's
    assert "IDENTIFIED" in str(update.params["blocks"])
    # Short notices go in the announcement's thread rather than the channel itself.
    assert await reply(harness, f"note {incident.id} Rebuild at 40%")
    await harness.settle()
    [note] = [c for c in posts(harness, ANNOUNCE) if "Rebuild at 40%" in c.params["text"]]
    assert note.params["thread_ts"] == incident.announce_ts


async def test_a_taken_channel_name_gets_a_suffix(harness: BotHarness) -> None:
    today = harness.services.clock.now().strftime("%Y%m%d")
    harness.double.add_channel("C0TAKEN", f"inc-{today}-001-payments-down")
    incident = await declare(harness, "declare P0 Payments down")
    names = [c.params["name"] for c in harness.double.calls_to("conversations.create")]
    assert names == [f"inc-{today}-001-payments-down", f"inc-{today}-001-payments-down-2"]
    assert harness.double.channel(incident.channel_id or "").name.endswith("-down-2")


async def test_war_room_failure_is_reported_and_retried_with_the_button(
    harness: BotHarness,
) -> None:
    harness.double.fail("conversations.create", error="restricted_action")
    incident = await declare(harness, "declare P1 Checkout down", user_id="U0BOB")
    assert incident.channel_id is None  # the incident stands without its room
    [dm] = [c for c in posts(harness, harness.double.state.open_im("U0BOB")[0].id)]
    assert (
        "restricted_action" in dm.params["text"]
        and f"/incident warroom {incident.id}" in (dm.params["text"])
    )
    timeline = await harness.services.incidents.timeline(incident.id)
    assert any(e.kind == "notification_failed" and "create_war_room" in e.text for e in timeline)
    outcomes = [(e.action, e.outcome) async for e in harness.services.audit.entries()]
    assert ("incident.create_war_room", "failed: restricted_action") in outcomes

    # /incident show offers the retry; pressing it opens the room.
    await harness.command(f"show {incident.id}", user_id="U0BOB")
    [shown] = await harness.replies()
    assert "has no war room yet" in str(shown["blocks"])
    retry = element(shown, blocks.RETRY_WAR_ROOM_ACTION)
    assert retry is not None and retry["value"] == incident.id
    await harness.click(blocks.RETRY_WAR_ROOM_ACTION, value=incident.id, user_id="U0BOB")
    [answer] = await harness.replies()
    assert "Opening a war room" in answer["text"]
    await harness.settle()
    room = (await current(harness, incident)).channel_id
    assert room is not None and harness.double.pins(room)
    assert "U0BOB" in harness.double.members(room)


async def test_person_not_in_the_workspace_is_reported_in_the_war_room(
    make_harness: HarnessFactory,
) -> None:
    double = SlackDouble(
        openapi_spec=openapi_spec(), users={"U0ALICE": {}, "U0BOB": {}, "U0ONCALL": {}}
    )
    policy = policy_with(escalation={**SRE_FIRST, "P1": [{"after": 0, "notify": ["U0GHOST"]}]})
    harness = await make_harness("sqlite", policy=policy, double=double)
    incident = await declare(harness)
    room = incident.channel_id
    assert room is not None
    assert "U0ALICE" in harness.double.members(room)
    assert "U0GHOST" not in harness.double.members(room)
    said = [c for c in posts(harness, room) if "user_not_found" in c.params["text"]]
    # The invitation's warning, and the page's (its DM reached nobody either).
    [page] = [c for c in said if "Level 1 page could not reach <@U0GHOST>" in c.params["text"]]
    [warning] = [c for c in said if c is not page]
    assert (
        "<@U0GHOST>" in warning.params["text"]
        and "not in this workspace" in (warning.params["text"])
    )
    [entry] = [e async for e in harness.services.audit.entries() if e.action == "incident.invite"]
    assert entry.outcome == "partly failed" and entry.args["failed"] == {
        "U0GHOST": "user_not_found"
    }

    # `/incident warroom` inside the room (no ID needed) runs the set-up again, harmlessly.
    invites_before = len(harness.double.calls_to("conversations.invite"))
    answer = await reply(harness, "warroom", channel_id=room)
    assert "again" in answer
    await harness.settle()
    assert len(harness.double.calls_to("conversations.invite")) > invites_before
    assert len(harness.double.pins(room)) == 1  # still one pinned summary
    assert len(harness.double.calls_to("conversations.create")) == 1


async def test_raising_a_p2_to_p1_opens_a_war_room(harness: BotHarness) -> None:
    incident = await declare(harness, "declare P2 Search is slow")
    answer = await reply(harness, f"severity {incident.id} P1")
    assert "P1 High" in answer
    await harness.settle()
    room = (await current(harness, incident)).channel_id
    assert room is not None and harness.double.pins(room)
    # The severity change is a status update: in the room now, and copied for a P1.
    assert [c.params["text"] for c in updates(harness, ANNOUNCE)][-1].startswith("Severity Changed")


async def test_lowering_a_p1_to_p2_is_told_in_the_announcement_channel(
    harness: BotHarness,
) -> None:
    # The announcement channel had the P1's updates copied; lowered to P2, nothing more was
    # copied, not even the lowering: its readers were left with a P1 under way.
    incident = await declare(harness)
    room = incident.channel_id or ""
    await reply(harness, "update identified Bad deploy", channel_id=room)
    await reply(harness, "severity P2", channel_id=room)
    await reply(harness, "update monitoring Rolled back", channel_id=room)
    await harness.settle()
    copied = [str(c.params["text"]) for c in updates(harness, ANNOUNCE)]
    assert len(copied) == 2 and copied[-1].startswith("Severity Changed"), copied
    assert "P2 Medium" in rendered(updates(harness, ANNOUNCE)[-1])
    # A P2's own updates stay in its room.
    assert rendered(updates(harness, room)[-1]).count("Rolled back") == 1


async def test_a_deleted_summary_is_posted_and_pinned_again(harness: BotHarness) -> None:
    incident = await declare(harness)
    room = incident.channel_id or ""
    harness.double.state.delete_message(room, incident.summary_ts or "")
    assert harness.double.pins(room) == []
    await reply(harness, "ack", channel_id=room)
    await harness.settle()
    summary = pinned_summary(harness, room)
    assert summary["ts"] != incident.summary_ts
    assert (await current(harness, incident)).summary_ts == summary["ts"]
    assert "Acknowledged" in str(summary["blocks"]) and "<@U0ALICE>" in str(summary["blocks"])
    assert await count(harness, "timeline WHERE kind = 'notification_failed'") == 0


async def test_war_room_and_updates_survive_a_slack_outage(make_harness: HarnessFactory) -> None:
    clock = FakeClock(datetime.now(UTC))
    harness = await make_harness("sqlite", clock=clock)
    harness.double.http_error("conversations.create", status=503, times=1)
    incident = await declare(harness)
    assert incident.channel_id is None  # not yet: kept in the outbox
    clock.advance(minutes=1)
    await harness.settle()
    incident = await current(harness, incident)
    room = incident.channel_id or ""
    assert room and harness.double.pins(room)
    assert len(harness.double.calls_to("conversations.create")) == 2

    # The war-room post of an update fails once; its copy waits its turn (an incident's
    # messages keep their order); the retry posts each once.
    harness.double.http_error("chat.postMessage", status=503, times=1)
    await reply(harness, "update identified Bad deploy", channel_id=room)
    await harness.settle()
    assert updates(harness, room) == [] and updates(harness, ANNOUNCE) == []
    clock.advance(minutes=1)
    await harness.settle()
    assert len(updates(harness, room)) == 1 and len(updates(harness, ANNOUNCE)) == 1
    assert await harness.services.dispatcher.pending_count() == 0


async def test_a_lost_create_reply_adopts_the_bots_own_channel(harness: BotHarness) -> None:
    # Slack makes the channel, then the answer is lost: the retry meets `name_taken`.
    harness.double.lose_reply("conversations.create")
    incident = await declare(harness, "declare P1 Checkout API returns 502")
    first, *retries = harness.double.calls_to("conversations.create")
    assert first.reply_lost and first.response["ok"]
    assert retries and {r.response.get("error") for r in retries} == {"name_taken"}
    assert harness.double.calls_to("conversations.list")
    rooms = [
        c for c in harness.double.state.channels.values() if c.name.startswith(incident.id.lower())
    ]
    assert [room.id for room in rooms] == [first.response["channel"]["id"]]
    assert incident.channel_id == rooms[0].id
    assert pinned_summary(harness, rooms[0].id)["ts"] == incident.summary_ts
    assert "U0ALICE" in harness.double.members(rooms[0].id)


async def test_a_bot_channel_older_than_the_incident_is_not_adopted(harness: BotHarness) -> None:
    # Same name, made by the bot long ago (a database restored from before): not this one's.
    today = harness.services.clock.now().strftime("%Y%m%d")
    stale = harness.double.add_channel(
        "C0STALE", f"inc-{today}-001-payments-down", creator=harness.double.state.bot_user_id
    )
    stale.created -= 86_400
    incident = await declare(harness, "declare P0 Payments down")
    assert incident.channel_id != "C0STALE"
    assert harness.double.channel(incident.channel_id or "").name.endswith("-down-2")
