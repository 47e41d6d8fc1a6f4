"""`/incident catchup` and the catch-up given on joining a war room, end to end on both
stores: signed requests in, the ephemeral answers and postEphemeral calls on the double."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from bot.clock import FakeClock
from bot.models import Actor
from bot.remediation import storage as requests
from bot.remediation.plans import Preview
from bot.reports.forms import PostmortemInput
from bot.reports.models import NewActionItem
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import declare, reply
from tests.harness import BotHarness
from tests.waiting import until


async def _tried(harness: BotHarness, incident_id: str, channel: str) -> None:
    """A remediation request on the incident that failed, as the remediation store keeps it."""
    now = harness.services.clock.now()
    async with harness.store.transaction() as tx:
        request = await requests.insert(
            tx,
            action="kubernetes.restart",
            service="checkout",
            params={},
            risk="medium",
            preview=Preview("restart deployment checkout"),
            requested_by="U0BOB",
            now=now,
            expires_at=now + timedelta(minutes=15),
            approvals_needed=1,
            incident_id=incident_id,
            channel_id=channel,
            origin="command",
            request_key=None,
        )
        await requests.update(tx, request.id, now, status="failed", outcome="timed out after 60 s")


async def _catchup(harness: BotHarness, text: str, **kwargs: object) -> dict:
    response = await harness.command(text, **kwargs)  # type: ignore[arg-type]
    assert response.status == 200
    [answer] = await harness.replies()
    assert answer.get("response_type") == "ephemeral", answer
    return answer


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_catchup_says_where_the_incident_stands_in_under_fifteen_lines(
    make_harness: HarnessFactory, store: str
) -> None:
    harness = await make_harness(store)
    incident = await declare(harness, "declare P1 Checkout &lt;b&gt; returns 502")
    room = incident.channel_id
    assert room
    await reply(harness, f"assign {incident.id} tech-lead <@U0BOB>")
    await reply(harness, f"update {incident.id} identified Bad deploy of checkout eta 30m")
    await reply(harness, f"note {incident.id} Rolling back build 4711")
    await _tried(harness, incident.id, room)
    await harness.services.postmortems.save_postmortem(
        incident.id,
        Actor("U0ALICE"),
        PostmortemInput(
            action_items=[
                NewActionItem(
                    "Alert on 502 rate", "U0BOB", harness.services.clock.now() + timedelta(days=3)
                )
            ]
        ),
    )

    answer = await _catchup(harness, "catchup", channel_id=room, user_id="U0CAROL")
    text = answer["text"]
    lines = text.splitlines()
    assert len(lines) < 15, lines
    assert lines[0].startswith(f"*Catch-up on {incident.id}*")
    assert "Checkout &lt;b&gt; returns" in lines[0] and "<b>" not in text  # user text, escaped
    assert lines[1].startswith("IDENTIFIED · :large_orange_circle: P1 High · open for ")
    assert "Commander <@U0ALICE>" in text and "Tech lead <@U0BOB>" in text
    assert "Last update" in text and "Bad deploy of checkout" in text and "ETA <!date^" in text
    assert "Tried: #1 kubernetes.restart checkout (failed: timed out after 60 s)" in text
    assert "Diagnosis: none run yet" in text
    assert "Alerts firing: none recorded" in text
    assert "Open action items (1): Alert on 502 rate (<@U0BOB>, due <!date^" in text
    recent = lines[lines.index("Most recent:") + 1 :]
    assert len(recent) == 3 and "Bad deploy of checkout" in recent[0]
    assert "Rolling back build 4711" in recent[1] and "Postmortem recorded" in recent[2]
    assert answer["blocks"][0]["text"]["text"] == text

    # By ID from anywhere, and the same answer for the same record.
    again = await _catchup(harness, f"catchup {incident.id}", user_id="U0CAROL")
    assert again["text"].splitlines()[2:] == lines[2:]

    async def audited() -> bool:  # read-only answers are audited once they are sent
        actions = [e.action async for e in harness.services.audit.entries()]
        return actions.count("incident.catchup") == 2

    await until(audited, "both catch-ups audited")


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_joining_the_war_room_gives_the_catchup_once(
    make_harness: HarnessFactory, store: str
) -> None:
    harness = await make_harness(store)
    incident = await declare(harness, "declare P1 Search is down")
    room = incident.channel_id
    assert room
    await reply(harness, f"update {incident.id} investigating Index nodes unreachable")

    channel = harness.double.channel(room)
    assert channel is not None

    def joined(user: str) -> dict:
        if user not in channel.members:
            channel.members.append(user)  # Slack sends the event once they are in
        return {"type": "member_joined_channel", "user": user, "channel": room, "team": "T0"}

    bot_user = harness.double.state.bot_user_id
    await harness.event(joined(bot_user), event_id="EvBOTJOIN")  # the bot itself: nothing
    await harness.event(joined("U0ALICE"), event_id="EvDECLARER")  # the declarer: nothing
    await harness.event(joined("U0NEW"), event_id="EvJOIN1")
    [given] = await harness.double.wait_for("chat.postEphemeral", 1)
    assert given.params["user"] == "U0NEW" and given.params["channel"] == room
    assert f"Catch-up on {incident.id}" in given.params["text"]
    assert "Index nodes unreachable" in given.params["text"]

    # Slack redelivers the event, then the person leaves and joins again: nothing more.
    await harness.event(joined("U0NEW"), event_id="EvJOIN1")
    await harness.event(joined("U0NEW"), event_id="EvJOIN2")
    await harness.event(joined("U0OTHER"), event_id="EvJOIN3")
    calls = await harness.double.wait_for("chat.postEphemeral", 2)
    assert [c.params["user"] for c in calls] == ["U0NEW", "U0OTHER"]
    # The claim is durable (the store's, not the process's): asked again, nothing is owed.
    assert await harness.services.catchup.for_joiner(room, "U0NEW") is None
    assert await harness.services.catchup.for_joiner("C0GENERAL", "U0NEW") is None
    outcomes = [
        (e.actor, e.outcome)
        async for e in harness.services.audit.entries()
        if e.action == "incident.catchup"
    ]
    assert outcomes == [
        ("U0NEW", "ok: on joining the war room"),
        ("U0OTHER", "ok: on joining the war room"),
    ]


async def test_a_catchup_on_joining_that_gets_no_answer_is_reported_cleanly(
    harness: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    # The postEphemeral's answer lost (a timeout): a warning, not a listener's traceback.
    incident = await declare(harness, "declare P1 Search is slow")
    room = incident.channel_id
    assert room
    await reply(harness, f"update {incident.id} investigating Index nodes slow")  # U0NEW is late
    channel = harness.double.channel(room)
    assert channel is not None
    channel.members.append("U0NEW")
    harness.double.lose_reply("chat.postEphemeral", times=2)  # slack_sdk tries twice
    event = {"type": "member_joined_channel", "user": "U0NEW", "channel": room, "team": "T0"}
    with caplog.at_level(logging.WARNING):
        await harness.event(event, event_id="EvJOINLOST")
        await harness.double.wait_for("chat.postEphemeral", 2)
        await until(
            lambda: any("could not give U0NEW" in r.getMessage() for r in caplog.records),
            "the failed catch-up reported",
        )
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_a_catchup_on_joining_that_slack_rate_limits_is_given_once_slack_allows(
    harness: BotHarness,
) -> None:
    """A 429 means Slack showed nothing, yet the catch-up was given up on for good: whoever
    joined during an incident's rush of joiners never got it."""
    incident = await declare(harness, "declare P1 Search is slow")
    room = incident.channel_id
    assert room
    await reply(harness, f"update {incident.id} investigating Index nodes slow")  # U0NEW is late
    channel = harness.double.channel(room)
    assert channel is not None
    channel.members.append("U0NEW")
    harness.double.rate_limit("chat.postEphemeral", retry_after=0, times=2)
    event = {"type": "member_joined_channel", "user": "U0NEW", "channel": room, "team": "T0"}
    await harness.event(event, event_id="EvJOINLIMITED")
    calls = await harness.double.wait_for("chat.postEphemeral", 3)
    assert [c.http_status for c in calls] == [429, 429, 200]
    assert calls[2].params["user"] == "U0NEW"
    assert f"Catch-up on {incident.id}" in calls[2].params["text"]


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_people_invited_as_the_war_room_opens_get_no_catchup_a_latecomer_does(
    make_harness: HarnessFactory, store: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Everyone invited into a new war room was given a catch-up of a seconds-old incident
    whose declaration they had just seen; it is for those who come later."""
    clock = FakeClock(datetime.now(UTC))  # the bot's clock: moved by hand below
    harness = await make_harness(store, clock=clock)
    incident = await declare(harness, "declare P1 Search is down")
    room = incident.channel_id
    assert room
    await harness.settle()  # the war room set up: its people invited
    channel = harness.double.channel(room)
    assert channel is not None
    bot_user = harness.double.state.bot_user_id
    invited = [m for m in channel.members if m not in (bot_user, "U0ALICE")]
    assert invited, channel.members

    def joined(user: str) -> dict:
        if user not in channel.members:
            channel.members.append(user)
        return {"type": "member_joined_channel", "user": user, "channel": room, "team": "T0"}

    def owed_nothing(user: str) -> bool:
        return any(
            r.getMessage() == f"no catch-up owed to {user} in {room}" for r in caplog.records
        )

    with caplog.at_level(logging.DEBUG, logger="commands.events"):
        clock.advance(seconds=30)  # within the room's first minutes, before any update
        for number, user in enumerate(invited):
            await harness.event(joined(user), event_id=f"EvINVITED{number}")
        for user in invited:
            await until(lambda user=user: owed_nothing(user), f"{user} joined with the room")
        # Minutes later, still without an update: a latecomer gets it.
        clock.advance(minutes=3)
        await harness.event(joined("U0LATE"), event_id="EvLATE")
        [given] = await harness.double.wait_for("chat.postEphemeral", 1)
    assert given.params["user"] == "U0LATE"
    assert f"Catch-up on {incident.id}" in given.params["text"]
    assert [c.params["user"] for c in harness.double.calls_to("chat.postEphemeral")] == ["U0LATE"]
    # Nothing was claimed for those invited: leaving and coming back late, they get one.
    again = await harness.services.catchup.for_joiner(room, invited[0])
    assert again is not None and again.user_id == invited[0]


async def test_a_joiner_soon_after_the_first_update_gets_the_catchup(
    make_harness: HarnessFactory,
) -> None:
    clock = FakeClock(datetime.now(UTC))
    harness = await make_harness("sqlite", clock=clock)
    incident = await declare(harness, "declare P1 Search is down")
    room = incident.channel_id
    assert room
    clock.advance(seconds=20)  # within the room's first minutes, but after an update
    await reply(harness, f"update {incident.id} identified Index nodes unreachable")
    event = {"type": "member_joined_channel", "user": "U0NEW", "channel": room, "team": "T0"}
    await harness.event(event, event_id="EvJOINED")
    [given] = await harness.double.wait_for("chat.postEphemeral", 1)
    assert given.params["user"] == "U0NEW"
    assert "Index nodes unreachable" in given.params["text"]
