"""A war-room message that gets the configured reaction (:pushpin:) joins the timeline,
once per message, whoever reacts and however often Slack delivers the event."""

from __future__ import annotations

from typing import Any

from bot.incidents.pending_pins import QUEUE, PendingPin
from bot.refs import Person
from bot.slack.rich import mrkdwn
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import count, declare, human_message, policy_with
from tests.harness import BotHarness
from tests.servers import PostgresServer
from tests.waiting import until


def _reaction(
    channel: str, ts: str, *, user: str = "U0BOB", name: str = "pushpin"
) -> dict[str, Any]:
    return {
        "type": "reaction_added",
        "user": user,
        "reaction": name,
        "item": {"type": "message", "channel": channel, "ts": ts},
        "item_user": "U0CAROL",
        "event_ts": ts,
    }


async def _copied(harness: BotHarness) -> int:
    return await count(harness, "timeline WHERE kind = 'message_added'")


async def test_pushpin_copies_a_war_room_message_once(harness: BotHarness) -> None:
    incident = await declare(harness)
    room = incident.channel_id or ""
    ts = human_message(harness, room, "U0CAROL", "Found it: the 14:02 deploy changed the pool size")
    assert (await harness.event(_reaction(room, ts))).status == 200
    await until(lambda: _has(harness, 1))
    [entry] = [
        e
        for e in await harness.services.incidents.timeline(incident.id)
        if e.kind == "message_added"
    ]
    assert entry.parts == (Person("U0CAROL"), ": Found it: the 14:02 deploy changed the pool size")
    assert (entry.actor, entry.source) == ("U0BOB", f"slack:{room}:{ts}")
    assert entry.data == {"channel": room, "ts": ts, "author": "U0CAROL"}

    # Another person pins it too, and Slack redelivers the first event: still one entry.
    again = _reaction(room, ts, user="U0DAVE")
    await harness.event(again, event_id="EvSECOND")
    await harness.event(again, event_id="EvSECOND")
    reply_ts = human_message(harness, room, "U0DAVE", "Rolling back now", thread_ts=ts)
    await harness.event(_reaction(room, reply_ts))  # a reply in a thread counts too
    await until(lambda: _has(harness, 2))
    texts = [
        mrkdwn(e.parts, e.said) for e in await harness.services.incidents.timeline(incident.id)
    ]
    assert "<@U0DAVE>: Rolling back now" in texts
    assert await _copied(harness) == 2
    actions = [e.action async for e in harness.services.audit.entries()]
    assert actions.count("incident.timeline_message") == 2


async def test_a_pinned_screenshot_is_on_the_timeline_by_its_name(harness: BotHarness) -> None:
    # A file shared with no text (the usual screenshot of a dashboard) was copied as
    # "@carol: " and nothing more, on the timeline and in the report.
    incident = await declare(harness)
    room = incident.channel_id or ""
    ts = human_message(harness, room, "U0CAROL", "")
    [message] = [m for m in harness.double.channel(room).messages if m["ts"] == ts]
    message["files"] = [{"id": "F0SHOT", "name": "image.png", "title": "p99 latency <EU>"}]
    await harness.event(_reaction(room, ts))
    await until(lambda: _has(harness, 1))
    [entry] = [
        e
        for e in await harness.services.incidents.timeline(incident.id)
        if e.kind == "message_added"
    ]
    assert entry.parts == (Person("U0CAROL"), ": Shared a file: p99 latency <EU>")


async def test_other_reactions_and_other_channels_are_ignored(harness: BotHarness) -> None:
    incident = await declare(harness)
    room = incident.channel_id or ""
    harness.double.add_channel("C0RANDOM", "random")
    elsewhere = human_message(harness, "C0RANDOM", "U0CAROL", "lunch?")
    here = human_message(harness, room, "U0CAROL", "CPU is at 97%")
    history_calls = len(harness.double.calls_to("conversations.history"))
    await harness.event(_reaction("C0RANDOM", elsewhere))  # not an incident channel
    await harness.event(_reaction(room, here, name="eyes"))  # not the configured reaction
    # Not a message's timestamp: once sent to Slack in a URL (5,000 characters) and audited.
    await harness.event(_reaction(room, "x" * 5000))
    await harness.event(_reaction(room, here + "\x00"))
    await harness.event(_reaction(room + "\x00", here))
    # A pin that counts, sent last: once it is in, the two above have been handled.
    await harness.event(_reaction(room, here))
    await until(lambda: _has(harness, 1))
    assert await _copied(harness) == 1
    # Only the war-room message was read from Slack.
    assert len(harness.double.calls_to("conversations.history")) == history_calls + 1
    actions = [e.action async for e in harness.services.audit.entries()]
    assert actions.count("incident.timeline_message") == 1


async def test_a_pin_by_someone_who_is_no_responder_copies_nothing(
    make_harness: HarnessFactory,
) -> None:
    # With responders limited, anyone in the public war room could still put their own words
    # on the timeline (and in the report): post a message, react with :pushpin: to it.
    roles = {"responders": ["U0ALICE", "U0BOB"], "approvers": ["U0ENGLEAD"]}
    harness = await make_harness(policy=policy_with(roles=roles))
    incident = await declare(harness)
    room = incident.channel_id or ""
    theirs = human_message(harness, room, "U0MALLORY", "Root cause: the DBA team, as always")
    await harness.event(_reaction(room, theirs, user="U0MALLORY"))

    async def refused() -> bool:
        outcomes = [e.outcome async for e in harness.services.audit.entries()]
        return "refused: not allowed" in outcomes

    await until(refused, "the refusal on record")
    assert await _copied(harness) == 0
    # Told privately, in `/incident note`'s words, where they reacted.
    [told] = await harness.double.wait_for("chat.postEphemeral", 1)
    assert (told.params["user"], told.params["channel"]) == ("U0MALLORY", room)
    assert told.params["text"] == ":no_entry: Only responders may change incidents."
    await harness.event(_reaction(room, theirs))  # a responder's pin of it counts
    await until(lambda: _has(harness, 1))


async def _has(harness: BotHarness, entries: int) -> bool:
    return await _copied(harness) >= entries


async def test_a_pin_while_the_database_is_down_is_recorded_when_it_is_back(
    own_postgres: PostgresServer, make_harness: HarnessFactory, redis_url: str
) -> None:
    harness = await make_harness(
        database_url=own_postgres.create_database("pins"), redis_url=redis_url
    )
    incident = await declare(harness)
    room = incident.channel_id or ""
    ts = human_message(harness, room, "U0CAROL", "The replica lag alarm fired at 14:02")
    pending = harness.services.pending_pins
    assert pending is not None

    own_postgres.pause()
    assert (await harness.event(_reaction(room, ts))).status == 200
    await until(lambda: _kept(harness, 1), "the pin kept")  # kept in Redis, not only logged

    own_postgres.resume()
    await until(lambda: _kept(harness, 0), "the kept pin replayed", timeout=30)
    [entry] = [
        e
        for e in await harness.services.incidents.timeline(incident.id)
        if e.kind == "message_added"
    ]
    assert entry.parts == (Person("U0CAROL"), ": The replica lag alarm fired at 14:02")
    assert (entry.actor, entry.source) == ("U0BOB", f"slack:{room}:{ts}")
    # Replaying again (a second replica's round) records nothing twice.
    await pending.coordinator.keep(QUEUE, _raw_pin(room, ts))
    await pending.replay()
    assert await _copied(harness) == 1


async def _kept(harness: BotHarness, items: int) -> bool:
    assert harness.services.pending_pins is not None
    return len(await harness.services.pending_pins.coordinator.kept(QUEUE, 100)) == items


def _raw_pin(room: str, ts: str) -> str:
    return PendingPin(channel_id=room, message_ts=ts, user_id="U0BOB").model_dump_json()


async def test_a_kept_pin_refused_once_the_database_is_back_is_on_record(
    own_postgres: PostgresServer, make_harness: HarnessFactory, redis_url: str
) -> None:
    # Kept through an outage, then replayed: a non-responder's pin was dropped with a log
    # line only, though a refused pin is audited when the database is up.
    roles = {"responders": ["U0ALICE", "U0BOB"], "approvers": ["U0ENGLEAD"]}
    harness = await make_harness(
        database_url=own_postgres.create_database("refusedpins"),
        redis_url=redis_url,
        policy=policy_with(roles=roles),
    )
    incident = await declare(harness)
    room = incident.channel_id or ""
    theirs = human_message(harness, room, "U0MALLORY", "Root cause: the DBA team")
    own_postgres.pause()
    await harness.event(_reaction(room, theirs, user="U0MALLORY"))
    await until(lambda: _kept(harness, 1), "the pin kept")
    own_postgres.resume()
    await until(lambda: _kept(harness, 0), "the kept pin replayed", timeout=30)
    refused = [
        (e.actor, e.action, e.outcome)
        async for e in harness.services.audit.entries()
        if e.outcome.startswith("refused")
    ]
    assert refused == [("U0MALLORY", "incident.timeline_message", "refused: not allowed")]
    assert await _copied(harness) == 0
