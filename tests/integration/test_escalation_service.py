"""The escalation engine on a fake clock: every planning rule, end to end through the store,
the outbox and the real Slack notifier against the Slack double."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.errors import Conflict, DuplicateRequest, PermissionDenied
from bot.escalation import EscalationService, ReminderKind
from bot.incidents.changes import IncidentChanges
from bot.incidents.naming import war_room_name
from bot.models import Actor, IncidentRole, Severity, Status
from bot.outbox import OutboxDispatcher
from bot.policy import parse_policy
from bot.reminders import FireResult, ReminderEngine, ReminderStatus
from bot.reminders import storage as reminder_storage
from bot.slack import escalation_text
from bot.slack.rich import mrkdwn
from bot.store import create_store, migrate
from tests.escalation_env import ALICE, BOB, FRIDAY_2PM, MATRIX_POLICY, Env, start_env, stop_env

K = ReminderKind
T0 = FRIDAY_2PM
MIN = timedelta(minutes=1)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    started = await start_env(f"sqlite:///{tmp_path}/escalation.db")
    yield started
    await stop_env(started)


@pytest.fixture(params=["sqlite", "postgres"])
async def any_env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/escalation.db"
    else:
        url = request.getfixturevalue("migrated_postgres_url")
    started = await start_env(url)
    yield started
    await stop_env(started)


async def _start_with(tmp_path: Path, old: str, new: str) -> Env:
    """An env (SQLite) on the matrix policy with `old` replaced by `new`."""
    policy = MATRIX_POLICY.replace(old, new)
    assert policy != MATRIX_POLICY
    return await start_env(
        f"sqlite:///{tmp_path}/escalation.db", policy=parse_policy(policy, source="<test>")
    )


async def test_declaration_pages_level_one_at_once_and_plans_the_rest(env: Env) -> None:
    incident = await env.declare("P1")

    assert await env.pending(incident) == {
        (K.PAGE, 2): T0 + 30 * MIN,
        (K.ACK_BREACH, 0): T0 + 30 * MIN,
        (K.RESOLVE_BREACH, 0): T0 + 4 * 60 * MIN,
        (K.UPDATE_DUE, 0): T0 + 60 * MIN,
    }
    [fired] = await env.reminders(incident, ReminderStatus.FIRED)
    assert (fired.kind, fired.level, fired.fired_at) == (K.PAGE, 1, T0)

    war_room = (await env.services.incidents.get(incident.id)).channel_id
    [page] = env.posts("Escalation level 1")
    assert page.params["channel"] == war_room  # the incident channel
    assert "<@U0ONCALL>" in page.params["text"] and "just been declared" in page.params["text"]
    assert env.dms("You are paged (escalation level 1)") == {"U0ONCALL": 1}
    assert "paged" in await env.timeline_kinds(incident)
    assert ("escalation.page", "chatops-bot", "ok") in await env.audit_actions(incident)
    state = await env.services.escalation.state(incident.id)
    assert state is not None and (state.plan, state.level) == (1, 1)


async def test_level_two_pages_on_time_groups_expanded_and_breach_recorded(env: Env) -> None:
    incident = await env.declare("P1")

    assert await env.step(minutes=29, seconds=59) == 0
    assert env.posts("Escalation level 2") == []

    assert await env.step(seconds=1) == 2  # the level-2 page and the ack-target breach
    [page] = env.posts("Escalation level 2")
    assert "<@U0ENGLEAD>" in page.params["text"] and "<!subteam^S0SRE>" in page.params["text"]
    assert "Nobody has acknowledged it in 30 min" in page.params["text"]
    # The group is expanded for the DMs; the lead, named twice, is paged once.
    assert env.dms("escalation level 2") == {"U0ENGLEAD": 1, "U0SRE1": 1, "U0SRE2": 1}
    assert [c.params["usergroup"] for c in env.double.calls_to("usergroups.users.list")] == [
        "S0SRE"
    ]

    [warning] = env.posts("missed its acknowledgement target")
    assert "not acknowledged within 30 min" in warning.params["text"]
    assert "<@U0ALICE>" in warning.params["text"]  # the commander
    state = await env.services.escalation.state(incident.id)
    assert state is not None and state.ack_breached_at == T0 + 30 * MIN and state.level == 2
    kinds = await env.timeline_kinds(incident)
    assert kinds.count("paged") == 2 and kinds.count("target_breached") == 1
    actions = [action for action, _, _ in await env.audit_actions(incident)]
    assert actions.count("escalation.page") == 2 and actions.count("escalation.breach") == 1

    # Nothing fires twice, however often the sweep runs.
    assert await env.step(seconds=5) == 0
    assert await env.services.reminders.fire_due() == 0
    assert len(env.posts("Escalation level 2")) == 1
    assert (await env.services.audit.verify()).ok


async def test_a_page_naming_people_queues_its_dms_and_a_group_is_fanned_out(
    any_env: Env,
) -> None:
    env = any_env
    incident = await env.declare("P1")  # level 1: U0ONCALL, a person

    async def kinds() -> list[str]:
        async with env.services.store.transaction() as tx:
            rows = await tx.fetchall(
                "SELECT kind FROM outbox WHERE lane LIKE ? ORDER BY id", (f"{incident.id}%",)
            )
        return [str(row["kind"]) for row in rows if str(row["kind"]).startswith("escalation.")]

    # The DM is queued with the page in the declaration: no fan-out effect to deliver first.
    assert await kinds() == ["escalation.page", "escalation.page_dm"]
    assert env.dms("You are paged (escalation level 1)") == {"U0ONCALL": 1}

    await env.step(minutes=30)  # level 2 names a user group: read from Slack, then DMed
    assert (await kinds())[2:4] == ["escalation.page", "escalation.page_fanout"]
    assert env.dms("escalation level 2") == {"U0ENGLEAD": 1, "U0SRE1": 1, "U0SRE2": 1}
    assert await env.step(minutes=1) == 0
    assert env.dms("You are paged (escalation level 1)") == {"U0ONCALL": 1}


async def test_a_page_pages_its_people_at_once_while_slack_cannot_list_its_user_group(
    any_env: Env,
) -> None:
    # Level 2 names U0ENGLEAD and S0SRE. usergroups.users.list answered 500: the whole
    # fan-out was retried, and U0ENGLEAD, named in person, got no DM until Slack listed the
    # group (up to 24 hours). Now the person is paged at once and the group when it reads.
    env = any_env
    await env.declare("P1")
    env.double.http_error("usergroups.users.list", 500)  # then it lists the group again
    await env.step(minutes=30)
    assert env.dms("escalation level 2") == {"U0ENGLEAD": 1}
    await env.step(seconds=5)  # past the first back-off
    assert env.dms("escalation level 2") == {"U0ENGLEAD": 1, "U0SRE1": 1, "U0SRE2": 1}


async def test_a_page_dm_does_not_wait_for_the_incident_channels_messages(any_env: Env) -> None:
    env = any_env
    # The announcement channel answers 500 for a while: the P2's announcement, which carries
    # its first page there, is retried later. The on-call person's DM goes to another channel.
    env.double.http_error("chat.postMessage", 500, times=4, channel="C0INCIDENTS")
    incident = await env.declare("P2")
    assert env.posts("Incident Update: Checkout down") == []
    assert env.dms("You are paged (escalation level 1)") == {"U0ONCALL": 1}

    for _ in range(4):  # each retry comes due: the channel gets the announcement, once
        await env.step(minutes=2)
    in_channel = [
        str(call.params["text"])
        for call in env.posts(incident.id)
        if call.params["channel"] == "C0INCIDENTS"
    ]
    assert len(in_channel) == 1 and in_channel[0].startswith("Incident Update:"), in_channel
    assert "<@U0ONCALL>: you are paged" in in_channel[0]
    assert env.dms("You are paged (escalation level 1)") == {"U0ONCALL": 1}


def _channel_texts(env: Env, channel: str = "C0INCIDENTS") -> list[str]:
    return [str(call.params["text"]) for call in env.posts() if call.params["channel"] == channel]


def _card_sections(call_params: dict[str, object]) -> list[str]:
    blocks = call_params.get("blocks") or []
    assert isinstance(blocks, list)
    return [
        str(block["text"]["text"])
        for block in blocks
        if block.get("type") == "section" and "text" in block
    ]


async def test_an_announcement_without_a_war_room_carries_the_first_page(any_env: Env) -> None:
    env = any_env
    incident = await env.declare("P2")

    # One message in the announcement channel, not two: the card, with the page in it (its
    # mention notifies, in the blocks and the notification text alike).
    [announced] = [
        call for call in env.posts(incident.id) if call.params["channel"] == "C0INCIDENTS"
    ]
    page = f"<@U0ONCALL>: you are paged. Acknowledge with `/incident ack {incident.id}`."
    assert page in str(announced.params["text"])
    assert any(page in text for text in _card_sections(announced.params))
    assert env.dms("You are paged (escalation level 1)") == {"U0ONCALL": 1}
    async with env.services.store.transaction() as tx:
        rows = await tx.fetchall("SELECT kind FROM outbox ORDER BY id")
    assert "escalation.page" not in [row["kind"] for row in rows]
    # The page is recorded as before.
    assert "paged" in await env.timeline_kinds(incident)
    assert ("escalation.page", "chatops-bot", "ok") in await env.audit_actions(incident)

    # Edited after the acknowledgement: the card no longer asks anyone to acknowledge.
    await env.services.incidents.acknowledge(incident.id, BOB)
    await env.deliver()
    edits = [
        call
        for call in env.double.calls_to("chat.update")
        if call.params["ts"] == announced.response["ts"]
    ]
    assert edits and not any("you are paged" in text for text in _card_sections(edits[-1].params))

    # A later level still pages in a post of its own; a P1's first page goes to its war room.
    other = await env.declare("P2", title="Search slow")
    await env.step(minutes=30)
    [level_2] = env.posts("Escalation level 2")
    assert level_2.params["channel"] == "C0INCIDENTS" and other.id in str(level_2.params["text"])
    p1 = await env.declare("P1", title="Payments down")
    [p1_page] = env.posts(f"*Escalation level 1* for *{p1.id}*")
    assert p1_page.params["channel"] == (await env.services.incidents.get(p1.id)).channel_id
    assert not any("you are paged" in text for text in _channel_texts(env) if p1.id in text)


async def test_an_announcement_held_up_past_the_acknowledgement_pages_nobody(env: Env) -> None:
    env.double.http_error("chat.postMessage", 500, times=2, channel="C0INCIDENTS")
    incident = await env.declare("P2")
    await env.services.incidents.acknowledge(incident.id, BOB)
    for _ in range(3):
        await env.step(minutes=2)
    [announced] = env.posts("Incident Update: Checkout down")
    assert "you are paged" not in str(announced.params["text"])
    assert not any("you are paged" in text for text in _card_sections(announced.params))


async def test_a_reopened_incident_is_paged_in_posts_of_its_own(env: Env) -> None:
    incident = await env.declare("P2")
    env.clock.advance(minutes=10)
    await env.services.incidents.resolve(incident.id, ALICE, summary="fixed")
    await env.deliver()
    await env.services.incidents.reopen(incident.id, ALICE, reason="back again")
    await env.deliver()
    [reopened_page] = env.posts("*Escalation level 1* for")
    assert reopened_page.params["channel"] == "C0INCIDENTS"
    assert "It has just been reopened." in str(reopened_page.params["text"])
    reopened = await env.services.incidents.get(incident.id)
    assert reopened.announced_page == ()
    last_edit = env.double.calls_to("chat.update")[-1]
    assert not any("you are paged" in text for text in _card_sections(last_edit.params))


async def test_a_first_level_that_waits_pages_in_a_post_of_its_own(tmp_path: Path) -> None:
    env = await _start_with(
        tmp_path,
        "  P2:\n    - {after: 0, notify: [U0ONCALL]}",
        "  P2:\n    - {after: 5m, notify: [U0ONCALL]}",
    )
    try:
        incident = await env.declare("P2")
        [announced] = env.posts(incident.id)
        assert "you are paged" not in str(announced.params["text"])
        await env.step(minutes=5)
        [page] = env.posts("Escalation level 1")
        assert page.params["channel"] == "C0INCIDENTS"
        assert "<@U0ONCALL>" in str(page.params["text"])
    finally:
        await stop_env(env)


async def test_a_user_groups_page_dms_do_not_wait_for_the_incident_channels_messages(
    tmp_path: Path,
) -> None:
    # The level names a user group: its members are read from Slack by a fan-out effect,
    # which waited in the incident's lane behind the announcement channel's posts.
    env = await _start_with(
        tmp_path,
        "- {after: 0, notify: [U0ONCALL]}\n    - {after: 30m, notify: [U0TEAMLEAD]}",
        "- {after: 0, notify: [S0SRE]}\n    - {after: 30m, notify: [U0TEAMLEAD]}",
    )
    try:
        env.double.http_error("chat.postMessage", 500, times=4, channel="C0INCIDENTS")
        await env.declare("P2")
        assert env.posts("Incident Update: Checkout down") == []
        paged = "You are paged (escalation level 1)"
        assert env.dms(paged) == {"U0SRE1": 1, "U0SRE2": 1, "U0ENGLEAD": 1}
        for _ in range(4):  # each retry comes due: the channel gets its posts, once each
            await env.step(minutes=5)
        assert len(env.posts("Incident Update: Checkout down")) == 1
        assert len(env.posts("Escalation level 1")) == 1
        assert env.dms(paged) == {"U0SRE1": 1, "U0SRE2": 1, "U0ENGLEAD": 1}
    finally:
        await stop_env(env)


async def test_a_page_dm_waits_for_the_war_room_it_names(any_env: Env) -> None:
    env = any_env
    incident = await env.declare("P1")  # a war room is opened: the DM sends people there
    incident = await env.services.incidents.get(incident.id)
    assert incident is not None and incident.channel_id is not None
    (dm,) = env.posts("You are paged (escalation level 1)")
    assert f"Join <#{incident.channel_id}>" in str(dm.params["text"])


async def test_an_escalation_reason_within_the_limit_is_kept_whole(env: Env) -> None:
    # README: an escalation reason may be 2,000 characters; it was cut at 500 without a word.
    incident = await env.declare("P1")
    reason = " ".join(["slow"] * 399) + " ENDED"  # 2,000 characters
    assert len(reason) == 2000
    await env.services.escalation.escalate(incident.id, ALICE, reason)
    await env.deliver()
    events = await env.services.incidents.timeline(incident.id)
    [paged] = [e for e in events if e.kind == "paged" and e.said]
    assert paged.said == reason
    assert ("escalation.page", ALICE.user_id, "ok") in await env.audit_actions(incident)
    entries = [e async for e in env.services.audit.entries(incident_id=incident.id)]
    [audited] = [e for e in entries if e.action == "escalation.page" and e.actor == ALICE.user_id]
    assert audited.args["reason"] == reason
    assert env.dms("slow slow") == {"U0ENGLEAD": 1, "U0SRE1": 1, "U0SRE2": 1}


async def test_a_war_room_slack_keeps_failing_to_create_holds_the_pages_a_minute_only(
    env: Env,
) -> None:
    # conversations.create answers 500 on and on (chat.postMessage works): the pages, which
    # wait for the war room they name, waited with it for up to 24 hours. After a minute
    # the room's creation fails for good and the pages go out naming the announcement channel.
    env.double.http_error("conversations.create", 500, times=1000)
    incident = await env.declare("P1")
    assert env.dms("You are paged") == {}
    for _ in range(4):  # the room's tries 2 to 5: still held
        await env.step(seconds=30)
    assert env.dms("You are paged") == {}
    for _ in range(2):
        await env.step(seconds=30)
    (dm,) = env.posts("You are paged (escalation level 1)")
    assert "Join <#C0INCIDENTS>" in str(dm.params["text"])
    [page] = env.posts("Escalation level 1")
    assert page.params["channel"] == "C0INCIDENTS"
    [told] = env.posts("could not create its war room")
    # Slack failed: nothing for the declarer to fix but to ask again once it answers.
    assert "Slack kept failing" in str(told.params["text"]) and "Fix it" not in str(
        told.params["text"]
    )
    assert "notification_failed" in await env.timeline_kinds(incident)

    env.double.reset()  # Slack mends: the room opens on request, as it was told
    await env.services.incidents.retry_war_room(incident.id, ALICE)
    await env.deliver()
    incident = await env.services.incidents.get(incident.id)
    assert incident is not None and incident.channel_id is not None


async def test_a_war_room_set_up_step_slack_keeps_failing_holds_the_pages_a_minute_only(
    env: Env,
) -> None:
    # pins.add answers 500 on and on (everything else works): the declaration's pages, which
    # wait behind the war room's set-up, waited behind the pin for up to 24 hours: nobody
    # was paged. Now the pin is given up after a minute, like the room's creation, and the
    # report does not claim the pages went to the announcement channel (they went to the
    # room, which exists).
    env.double.http_error("pins.add", 500, times=1000)
    incident = await env.declare("P1")
    stored = await env.services.incidents.get(incident.id)
    assert stored is not None and stored.channel_id is not None
    for _ in range(6):  # the pin's tries 2 to 6, about a minute
        await env.step(seconds=30)
    [page] = env.posts("Escalation level 1")
    assert page.params["channel"] == stored.channel_id
    (dm,) = env.posts("You are paged (escalation level 1)")
    assert f"Join <#{stored.channel_id}>" in str(dm.params["text"])
    [told] = env.posts("could not pin its summary")
    text = str(told.params["text"])
    assert told.params["channel"] == stored.channel_id and "announcement channel" not in text
    assert "Slack kept failing" in text and f"`/incident warroom {incident.id}`" in text
    assert "notification_failed" in await env.timeline_kinds(incident)


async def test_a_war_room_that_waited_its_turn_is_not_given_up_on_its_first_failure(
    env: Env,
) -> None:
    # The announcement before it is held up for minutes (a busy or failing channel): the
    # room's first try comes late, and one 500 then is retried, not taken for an outage.
    env.double.http_error("chat.postMessage", 500, times=6, channel="C0INCIDENTS")
    env.double.http_error("conversations.create", 500, times=1)
    incident = await env.declare("P1")
    for _ in range(10):
        await env.step(seconds=30)
    incident = await env.services.incidents.get(incident.id)
    assert incident is not None and incident.channel_id is not None
    assert env.posts("could not create its war room") == []


async def test_a_war_room_slack_rate_limits_for_minutes_is_waited_for(env: Env) -> None:
    # 429s are Slack working at its pace (a burst of war rooms): no giving up on the room.
    env.double.rate_limit("conversations.create", retry_after=30, times=5)
    incident = await env.declare("P1")
    for _ in range(6):
        await env.step(seconds=31)
    incident = await env.services.incidents.get(incident.id)
    assert incident is not None and incident.channel_id is not None
    assert env.posts("could not create its war room") == []
    (dm,) = env.posts("You are paged (escalation level 1)")
    assert f"Join <#{incident.channel_id}>" in str(dm.params["text"])


async def test_a_war_room_summary_slack_rate_limits_for_minutes_is_waited_for(env: Env) -> None:
    # chat.postMessage's own limit ("rate_limited", HTTP 200, no Retry-After) is Slack's
    # pace too: the summary card is not given up as an outage after a minute of it.
    room = war_room_name("INC-20261127-001", "Checkout down")
    env.double.fail("chat.postMessage", "rate_limited", times=7, channel=room)
    incident = await env.declare("P1")
    for _ in range(10):  # the back-off's 2 to 128 s, past CREATE_ATTEMPTS tries
        await env.step(seconds=60)
    incident = await env.services.incidents.get(incident.id)
    assert incident is not None and incident.summary_ts is not None
    assert env.posts("could not post its summary") == []


async def test_a_page_dm_held_up_past_an_ack_and_a_reopening_is_withdrawn(
    any_env: Env,
) -> None:
    env = any_env
    # The on-call person's DM channel cannot be opened for a while: the declaration's DM is
    # still queued when the incident is acknowledged, resolved and reopened. The reopening
    # pages level 1 again; the first escalation's DM, acknowledged, must not ring as well.
    env.double.http_error("conversations.open", 500, times=3)
    incident = await env.declare("P2")
    assert env.dms("You are paged") == {}
    await env.services.incidents.acknowledge(incident.id, BOB)
    await env.services.incidents.resolve(incident.id, ALICE, summary="Looked fixed")
    env.clock.advance(seconds=5)  # before the DM's retry comes due
    await env.services.incidents.reopen(incident.id, ALICE, reason="Errors are back")
    await env.deliver()
    for _ in range(4):  # each retry comes due
        await env.step(minutes=2)
    assert env.dms("You are paged (escalation level 1)") == {"U0ONCALL": 1}
    [dm] = env.posts("You are paged (escalation level 1)")
    assert "It has just been reopened" in str(dm.params["text"])


async def test_acknowledging_cancels_the_pages_and_the_ack_target_only(env: Env) -> None:
    incident = await env.declare("P1")
    await env.step(minutes=10)
    await env.services.incidents.acknowledge(incident.id, BOB)

    assert await env.pending(incident) == {
        (K.RESOLVE_BREACH, 0): T0 + 4 * 60 * MIN,
        (K.UPDATE_DUE, 0): T0 + 60 * MIN,
    }
    cancelled = await env.reminders(incident, ReminderStatus.CANCELLED)
    assert {(r.kind, r.level) for r in cancelled} == {(K.PAGE, 2), (K.ACK_BREACH, 0)}
    assert await env.step(minutes=25) == 0
    assert env.posts("Escalation level 2") == [] and env.posts("missed its") == []


async def test_update_due_reminds_the_commander_and_follows_each_update(env: Env) -> None:
    incident = await env.declare("P1")
    await env.services.incidents.acknowledge(incident.id, BOB)
    await env.services.incidents.assign(
        incident.id, ALICE, role=IncidentRole.COMMANDER, user_id="U0CAROL"
    )

    await env.step(hours=1)
    assert env.dms("status update on") == {"U0CAROL": 1}  # the commander now, not the declarer
    assert await env.pending(incident) == {
        (K.RESOLVE_BREACH, 0): T0 + 4 * 60 * MIN,
        (K.UPDATE_DUE, 0): T0 + 120 * MIN,  # unanswered: again a cadence later
    }

    env.clock.advance(minutes=30)
    await env.services.incidents.update_status(
        incident.id, ALICE, status=Status.IDENTIFIED, message="Bad deploy found"
    )
    assert (await env.pending(incident))[(K.UPDATE_DUE, 0)] == T0 + 150 * MIN
    await env.step(minutes=30)  # 2 h: the old reminder was withdrawn by the update
    assert env.dms("status update on") == {"U0CAROL": 1}
    await env.step(minutes=30)
    assert env.dms("status update on") == {"U0CAROL": 2}
    assert (await env.timeline_kinds(incident)).count("reminded") == 2


async def test_resolving_cancels_open_reminders_and_the_reviews_follow(env: Env) -> None:
    incident = await env.declare("P1")
    await env.step(minutes=50)  # level 2 and the breach fired on the way
    await env.services.incidents.resolve(incident.id, ALICE, summary="Rolled back")

    resolved_at = T0 + 50 * MIN
    assert await env.pending(incident) == {
        (K.PRELIMINARY_REVIEW, 0): resolved_at + timedelta(hours=24),
        (K.FORMAL_REVIEW, 0): resolved_at + timedelta(weeks=1),
    }
    await env.step(hours=23, minutes=59)
    assert env.dms("review of") == {}
    await env.step(minutes=1)
    assert env.dms("preliminary review of") == {"U0ALICE": 1}
    await env.step(days=6)
    assert env.dms("formal review of") == {"U0ALICE": 1}
    assert await env.pending(incident) == {}
    actions = [action for action, _, _ in await env.audit_actions(incident)]
    assert "escalation.review_preliminary" in actions and "escalation.review_formal" in actions


async def test_reopening_cancels_the_reviews_and_escalates_afresh(env: Env) -> None:
    incident = await env.declare("P1")
    await env.services.incidents.acknowledge(incident.id, BOB)
    await env.step(minutes=20)
    await env.services.incidents.resolve(incident.id, ALICE, summary="Looked fixed")
    await env.step(minutes=40)
    await env.services.incidents.reopen(incident.id, ALICE, reason="Errors are back")
    await env.deliver()

    reopened = T0 + 60 * MIN
    assert await env.pending(incident) == {
        (K.PAGE, 2): reopened + 30 * MIN,
        (K.ACK_BREACH, 0): reopened + 30 * MIN,
        (K.RESOLVE_BREACH, 0): reopened + 4 * 60 * MIN,
        (K.UPDATE_DUE, 0): reopened + 60 * MIN,
    }
    cancelled = await env.reminders(incident, ReminderStatus.CANCELLED)
    assert {K.PRELIMINARY_REVIEW, K.FORMAL_REVIEW} <= {r.kind for r in cancelled}
    assert len(env.posts("Escalation level 1")) == 2  # paged again at the reopening
    assert len(env.posts("It has just been reopened")) == 2  # the page and its DM
    await env.step(minutes=30)
    assert len(env.posts("Escalation level 2")) == 1
    state = await env.services.escalation.state(incident.id)
    assert state is not None and (state.plan, state.anchor_at, state.level) == (2, reopened, 2)


async def test_upgrade_pages_at_once_the_levels_already_due(env: Env) -> None:
    incident = await env.declare("P2")
    await env.step(minutes=40)  # P2 level 2 (the team lead) paged at 30 min
    assert env.dms("escalation level 2") == {"U0TEAMLEAD": 1}

    await env.services.incidents.change_severity(incident.id, ALICE, severity=Severity.P0)
    await env.deliver()
    # P0's ack target (15 min) has long passed: warned at once. Level 2 was reached: P0's
    # level-2 people, whom P2 did not name, are paged now; the team lead is not paged again.
    assert len(env.posts("missed its acknowledgement target")) == 1
    assert env.dms("escalation level 2") == {
        "U0TEAMLEAD": 1,
        "U0ENGLEAD": 1,
        "U0SRE1": 1,
        "U0SRE2": 1,
    }
    assert await env.pending(incident) == {
        (K.PAGE, 3): T0 + 60 * MIN,
        (K.RESOLVE_BREACH, 0): T0 + 2 * 60 * MIN,
        (K.UPDATE_DUE, 0): T0 + 70 * MIN,
    }
    await env.step(minutes=20)
    assert env.dms("escalation level 3") == {"U0VPENG": 1}


async def test_raising_the_severity_pages_whom_its_reached_levels_name_and_nobody_twice(
    tmp_path: Path,
) -> None:
    # P1's first level names the incident commander besides the on-call person: raising a P2
    # to P1 left the commander unpaged (level 1 counted as paged), and nothing ever paged them.
    env = await _start_with(
        tmp_path,
        "  P1:\n    - {after: 0, notify: [U0ONCALL]}",
        "  P1:\n    - {after: 0, notify: [U0ONCALL, U0IC]}",
    )
    try:
        incident = await env.declare("P2")
        await env.step(minutes=5)
        await env.services.incidents.change_severity(incident.id, ALICE, severity=Severity.P1)
        await env.deliver()
        await env.step(seconds=1)
        assert env.dms("You are paged (escalation level 1)") == {"U0ONCALL": 1, "U0IC": 1}
        assert (await env.timeline_kinds(incident)).count("paged") == 2
        # Lowering it again and raising it once more pages nobody a second time.
        await env.services.incidents.change_severity(incident.id, ALICE, severity=Severity.P2)
        await env.services.incidents.change_severity(incident.id, ALICE, severity=Severity.P1)
        await env.step(seconds=1)
        assert env.dms("You are paged (escalation level 1)") == {"U0ONCALL": 1, "U0IC": 1}
    finally:
        await stop_env(env)


async def test_upgrade_before_the_levels_are_due_keeps_the_waits(env: Env) -> None:
    incident = await env.declare("P2")
    await env.step(minutes=10)
    await env.services.incidents.change_severity(incident.id, ALICE, severity=Severity.P0)
    assert await env.pending(incident) == {
        (K.PAGE, 2): T0 + 30 * MIN,
        (K.PAGE, 3): T0 + 60 * MIN,
        (K.ACK_BREACH, 0): T0 + 15 * MIN,
        (K.RESOLVE_BREACH, 0): T0 + 2 * 60 * MIN,
        (K.UPDATE_DUE, 0): T0 + 40 * MIN,
    }
    assert await env.step(minutes=5) == 1  # the P0 ack target
    assert await env.step(minutes=15) == 1  # P0 level 2 at 30 min
    assert env.dms("escalation level 2") == {"U0ENGLEAD": 1, "U0SRE1": 1, "U0SRE2": 1}


async def test_downgrade_to_p3_counts_the_business_day_and_drops_updates(env: Env) -> None:
    incident = await env.declare("P1")
    await env.step(minutes=5)
    await env.services.incidents.change_severity(incident.id, ALICE, severity=Severity.P3)
    monday_2pm = datetime(2026, 11, 30, 14, tzinfo=UTC)
    assert await env.pending(incident) == {
        (K.PAGE, 2): T0 + 30 * MIN,
        (K.ACK_BREACH, 0): monday_2pm,
        (K.RESOLVE_BREACH, 0): T0 + timedelta(weeks=1),
    }


async def test_p3_acknowledgement_breach_waits_for_the_working_week(env: Env) -> None:
    env.clock.set(datetime(2026, 11, 27, 16, tzinfo=UTC))  # Friday 16:00 in London
    incident = await env.declare("P3", "Typo on the status page")
    await env.step(minutes=30)  # level 2 (the team lead) is clock time: paged on Friday
    assert env.dms("escalation level 2") == {"U0TEAMLEAD": 1}
    await env.step(hours=24)  # Saturday
    await env.step(hours=24)  # Sunday
    env.clock.set(datetime(2026, 11, 30, 15, 59, tzinfo=UTC))
    assert await env.step() == 0
    assert env.posts("missed its acknowledgement target") == []
    assert await env.step(minutes=1) == 1
    [warning] = env.posts("missed its acknowledgement target")
    assert "within 1 business day" in warning.params["text"]
    assert incident.id in warning.params["text"]


async def test_manual_escalation_pages_the_next_level_now(env: Env) -> None:
    incident = await env.declare("P0")
    await env.step(minutes=5)

    done = await env.services.escalation.escalate(
        incident.id, BOB, reason="need the database team", request_id="req-1"
    )
    await env.deliver()
    assert (done.level, done.recipients, done.last_level) == (2, ("U0ENGLEAD", "S0SRE"), 3)
    [page] = env.posts("Escalation level 2")
    # The reason ends its sentence: it does not run into the next one.
    assert "<@U0BOB> escalated it by hand: need the database team. Acknowledge with" in str(
        page.params["text"]
    )
    assert env.dms("escalation level 2") == {"U0ENGLEAD": 1, "U0SRE1": 1, "U0SRE2": 1}
    assert (K.PAGE, 2) not in await env.pending(incident)  # its scheduled page is withdrawn
    assert (await env.pending(incident))[(K.PAGE, 3)] == T0 + 60 * MIN
    assert ("escalation.page", "U0BOB", "ok") in await env.audit_actions(incident)
    timeline = await env.services.incidents.timeline(incident.id)
    assert any(
        "escalated by <@U0BOB>: need the database team" in mrkdwn(e.parts, e.said) for e in timeline
    )

    with pytest.raises(DuplicateRequest):
        await env.services.escalation.escalate(incident.id, BOB, reason="x", request_id="req-1")
    await env.services.incidents.acknowledge(incident.id, BOB)  # by hand works when acked
    assert (await env.services.escalation.escalate(incident.id, BOB)).level == 3
    with pytest.raises(Conflict, match="already paged every escalation level"):
        await env.services.escalation.escalate(incident.id, BOB)
    await env.step(minutes=30)
    await env.deliver()
    assert len(env.posts("Escalation level 2")) == 1
    assert len(env.posts("Escalation level 3")) == 1
    assert env.dms("escalation level 3") == {"U0VPENG": 1}  # acknowledged, but asked for

    await env.services.incidents.resolve(incident.id, ALICE, summary="done")
    with pytest.raises(Conflict, match="resolved"):
        await env.services.escalation.escalate(incident.id, BOB)
    assert escalation_text.escalated_confirmation(incident.id, 3, 3, ("U0VPENG",)).endswith(
        "That is the last level."
    )


async def test_only_responders_may_escalate(tmp_path: Path) -> None:
    text = MATRIX_POLICY + "roles:\n  responders: [U0ALICE, S0SRE]\n"
    env = await start_env(f"sqlite:///{tmp_path}/roles.db", policy=parse_policy(text))
    try:
        incident = await env.declare("P1")
        with pytest.raises(PermissionDenied):
            await env.services.escalation.escalate(incident.id, Actor("U0MALLORY"))
        # A member of a responder group may (groups expanded through Slack).
        assert (await env.services.escalation.escalate(incident.id, Actor("U0SRE1"))).level == 2
    finally:
        await stop_env(env)


async def _second_process(env: Env, url: str) -> ReminderEngine:
    """Another bot process: its own connections and owner, the same database, the
    escalation kinds registered with its reminder engine."""
    store = create_store(url)
    await store.open()
    await migrate(store)
    changes = IncidentChanges(
        store=store, clock=env.clock, dispatcher=OutboxDispatcher(store, env.clock)
    )
    engine = ReminderEngine(store=store, clock=env.clock, changes=changes, owner="process-b")
    EscalationService(
        store=store,
        policy=env.services.policy,
        notifier=env.services.notifier,
        permissions=env.services.permissions,
        changes=changes,
        engine=engine,
    )
    return engine


def _url(env: Env) -> str:
    return str(env.services.store.url)  # type: ignore[attr-defined]


async def test_two_processes_racing_for_one_reminder_fire_it_once(any_env: Env) -> None:
    env = any_env
    other = await _second_process(env, _url(env))
    try:
        incident = await env.declare("P1")
        env.clock.advance(minutes=30)
        level2 = next(r for r in await env.reminders(incident) if r.level == 2)
        results = await asyncio.gather(
            env.services.reminders.fire(level2.id), other.fire(level2.id)
        )
        assert sorted(results) == sorted([FireResult.FIRED, FireResult.NOT_CLAIMED])
        fired = await asyncio.gather(env.services.reminders.fire_due(), other.fire_due())
        assert sum(fired) == 1  # the ack breach, by one of them
        await env.deliver()
        assert len(env.posts("Escalation level 2")) == 1
        assert len(env.posts("missed its acknowledgement target")) == 1
        assert env.dms("escalation level 2") == {"U0ENGLEAD": 1, "U0SRE1": 1, "U0SRE2": 1}
    finally:
        await other.store.close()


async def test_a_claim_left_by_a_crashed_process_is_taken_over(env: Env) -> None:
    incident = await env.declare("P1")
    env.clock.advance(minutes=30)
    level2 = next(r for r in await env.reminders(incident) if r.level == 2)
    async with env.services.store.transaction() as tx:  # claimed, then the process died
        assert await reminder_storage.claim(tx, level2.id, "dead", env.clock.now(), 30.0)

    assert await env.step() == 1  # only the ack breach: the claim still holds
    assert env.posts("Escalation level 2") == []
    assert await env.step(seconds=31) == 1  # expired: taken over and fired, once
    assert len(env.posts("Escalation level 2")) == 1
    [fired] = [r for r in await env.reminders(incident) if r.level == 2]
    assert fired.status is ReminderStatus.FIRED
    assert fired.claimed_by == env.services.reminders.owner


async def test_a_page_that_slack_refuses_is_recorded(tmp_path: Path) -> None:
    env = await start_env(
        f"sqlite:///{tmp_path}/strict.db",
        users={"U0ALICE": {}, "U0BOB": {}, "U0ENGLEAD": {}, "U0SRE1": {}, "U0SRE2": {}},
    )
    try:
        incident = await env.declare("P2")  # U0ONCALL is not in this workspace
        timeline = await env.services.incidents.timeline(incident.id)
        failed = [e for e in timeline if e.kind == "notification_failed"]
        assert [mrkdwn(e.parts, e.said) for e in failed] == [
            "Level 1 page could not reach <@U0ONCALL>: not in this Slack workspace"
            " (user_not_found)",
            # Level 1 reached nobody: level 2 was paged at once (bot.escalation.delivery).
            "Level 2 page could not reach <@U0TEAMLEAD>: not in this Slack workspace"
            " (user_not_found)",
            "Level 2, the last escalation level of P2, reached nobody by DM: no one else"
            " will be paged.",
        ]
        assert ("escalation.page_dm", "chatops-bot", "failed: user_not_found") in (
            await env.audit_actions(incident)
        )
    finally:
        await stop_env(env)


async def test_an_unreadable_user_group_still_pages_everyone_else(tmp_path: Path) -> None:
    env = await start_env(f"sqlite:///{tmp_path}/groups.db", usergroups={})
    try:
        incident = await env.declare("P1")
        await env.step(minutes=30)
        assert env.dms("escalation level 2") == {"U0ENGLEAD": 1}
        timeline = await env.services.incidents.timeline(incident.id)
        assert "Page could not read <!subteam^S0SRE>: no_such_subteam" in [
            mrkdwn(e.parts, e.said) for e in timeline if e.kind == "notification_failed"
        ]
    finally:
        await stop_env(env)


async def test_oncall_shows_who_stands_at_each_level(env: Env) -> None:
    rows = env.services.escalation.oncall()
    assert [row.severity for row in rows] == list(Severity)
    p0 = rows[0]
    assert [(lvl.level, lvl.after, lvl.recipients) for lvl in p0.levels] == [
        (1, 0, ("U0ONCALL",)),
        (2, 1800, ("U0ENGLEAD", "S0SRE")),
        (3, 3600, ("U0VPENG",)),
    ]
    text = escalation_text.oncall_text(env.services.escalation.oncall(Severity.P3))
    assert "acknowledge within 1 business day" in text
    assert "Level 1, at once: <@U0ASSIGNED>" in text
    assert "Level 2, after 30 min: <@U0TEAMLEAD>" in text


async def test_a_page_by_hand_acknowledged_before_its_delivery_still_goes_out(env: Env) -> None:
    # The escalator was told "paging the team lead now"; an acknowledgement committed before
    # the page's post and DM were delivered withdrew them, as if the schedule had paged.
    incident = await env.declare("P2", "Queue backlog")
    done = await env.services.escalation.escalate(incident.id, BOB, reason="need the owners")
    await env.services.incidents.acknowledge(incident.id, ALICE)
    await env.deliver()
    assert done.recipients == ("U0TEAMLEAD",)
    [page] = env.posts("Escalation level 2")
    assert "It is acknowledged already: join in." in str(page.params["text"])
    assert env.dms("escalation level 2") == {"U0TEAMLEAD": 1}
