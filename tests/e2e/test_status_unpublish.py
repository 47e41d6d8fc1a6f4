"""`/incident unpublish`: an incident, or one status update of it, taken off the public status
page (HTML, JSON, Atom) at the next request, in one change; bad input changes nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import psycopg
import pytest

from bot.clock import FakeClock
from tests.e2e.incident_helpers import reply
from tests.e2e.status_helpers import (
    ATOM,
    atom_entries,
    declare_with_services,
    get,
    status_policy,
)
from tests.harness import BotHarness
from tests.waiting import until

SECRET = "password hunter2 leaked by ACME Corp"


async def _everything(harness: BotHarness) -> str:
    """The three public documents, as a reader at the next request gets them."""
    texts = [(await get(harness, path)).text for path in ("/status", "/status.json")]
    return "".join(texts) + (await get(harness, "/status/feed.atom")).text


async def _updates(harness: BotHarness) -> list[str]:
    doc = json.loads((await get(harness, "/status.json")).text)
    return [u["text"] for shown in doc["open_incidents"] for u in shown["updates"]]


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_unpublish_one_update_then_the_whole_incident(make_harness, store: str) -> None:
    harness = await make_harness(store, policy=status_policy(), STATUS_REFRESH_SECONDS=0)
    incident = await declare_with_services(harness, "Card payments fail")
    room = (await harness.services.incidents.get(incident.id)).channel_id or ""
    await reply(harness, "update identified Bad deploy, rolling back", channel_id=room)
    await reply(harness, f"update monitoring {SECRET}", channel_id=room)
    await reply(harness, "publish", channel_id=room)
    etag = (await get(harness, "/status")).headers["ETag"]
    assert SECRET in await _everything(harness)

    answer = await reply(harness, f"unpublish {incident.id} update 2", channel_id="C0OTHER")
    quoted = "(“password hunter2 leaked by ACME Corp”)"
    assert f"Status update 2 of *{incident.id}* {quoted} is off the public" in answer, answer
    # At the next request, whatever the reader's cached copy: a new ETag, nothing of it left.
    again = await get(harness, "/status", **{"If-None-Match": etag})
    assert again.status == 200 and "Card payments fail" in again.text
    assert SECRET not in await _everything(harness)
    assert await _updates(harness) == ["Bad deploy, rolling back"]
    # Publishing again never puts a withdrawn update back, and says so.
    answer = await reply(harness, "publish", channel_id=room)
    assert "already on the public status page, but update 2, withdrawn, stays off" in answer
    # Nor does publishing (say, a later update) never puts a withdrawn update back.
    await reply(harness, "update monitoring Error rates normal", channel_id=room)
    assert "Published 1 more status update" in await reply(harness, "publish", channel_id=room)
    assert await _updates(harness) == ["Error rates normal", "Bad deploy, rolling back"]
    answer = await reply(harness, f"unpublish {incident.id} update 2")
    assert f"Update 2 of {incident.id} was withdrawn already (on the page: updates 1, 3)" in answer

    # The change is recorded: a timeline line and an audit entry with who did it.
    await harness.settle()
    _, events = await harness.services.incidents.with_timeline(incident.id)
    [withdrawn] = [e for e in events if e.kind == "withdrawn"]
    assert "Status update 2 withdrawn from the status page by" in withdrawn.text
    assert "U0ALICE" in withdrawn.text

    answer = await reply(harness, "unpublish", channel_id=room, user_id="U0BOB")
    assert f"*{incident.id}* is off the public status page now" in answer, answer
    everything = await _everything(harness)
    for gone in ("Card payments fail", "Bad deploy", "Error rates normal", incident.id):
        assert gone not in everything, gone
    doc = json.loads((await get(harness, "/status.json")).text)
    assert doc["open_incidents"] == [] and doc["state"] == "operational"
    assert atom_entries((await get(harness, "/status/feed.atom")).text) == []
    entries = [
        (e.actor, e.outcome, e.args)
        async for e in harness.services.audit.entries(incident_id=incident.id)
        if e.action == "incident.unpublish"
    ]
    assert entries == [("U0ALICE", "ok", {"update": 2}), ("U0BOB", "ok", {})]
    _, events = await harness.services.incidents.with_timeline(incident.id)
    assert events[-1].kind == "withdrawn"
    assert events[-1].text.startswith("Withdrawn from the status page by")


async def test_last_withdraws_the_newest_published_update(make_harness) -> None:
    harness = await make_harness(policy=status_policy(), STATUS_REFRESH_SECONDS=0)
    incident = await declare_with_services(harness, "Slow checkout")
    room = (await harness.services.incidents.get(incident.id)).channel_id or ""
    await reply(harness, "update identified First", channel_id=room)
    await reply(harness, f"update identified {SECRET}", channel_id=room)
    await reply(harness, "publish", channel_id=room)
    await reply(harness, "update monitoring Not published", channel_id=room)
    answer = await reply(harness, "unpublish last", channel_id=room)
    assert "Status update 2 of" in answer and "password hunter2" in answer, answer
    assert await _updates(harness) == ["First"]


async def _impact(harness: BotHarness) -> str:
    doc = json.loads((await get(harness, "/status.json")).text)
    [shown] = doc["open_incidents"]
    return str(shown["impact"])


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_an_impact_goes_public_only_with_its_published_update(make_harness, store) -> None:
    # The impact is words a person typed in a status update: an update not published, or
    # withdrawn, keeps its impact off the page (it was shown live from the incident).
    harness = await make_harness(store, policy=status_policy(), STATUS_REFRESH_SECONDS=0)
    incident = await declare_with_services(harness, "Card payments fail", impact="EU cards")
    room = (await harness.services.incidents.get(incident.id)).channel_id or ""
    await reply(harness, "update identified Deploy impact Half of EU checkouts", channel_id=room)
    await reply(harness, "publish", channel_id=room)
    assert await _impact(harness) == "Half of EU checkouts"

    await reply(harness, f"update monitoring Internal only impact {SECRET}", channel_id=room)
    assert (await harness.services.incidents.get(incident.id)).impact == SECRET  # in Slack
    assert await _impact(harness) == "Half of EU checkouts"
    assert SECRET not in await _everything(harness)

    await reply(harness, "publish", channel_id=room)
    assert await _impact(harness) == SECRET
    await reply(harness, "unpublish last", channel_id=room)
    assert await _impact(harness) == "Half of EU checkouts"
    assert SECRET not in await _everything(harness)
    await reply(harness, "unpublish update 1", channel_id=room)
    assert await _impact(harness) == "EU cards"  # as declared


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("unpublish INC-20991231-999", "There is no incident INC-20991231-999"),
        ("unpublish {id} update 7", "has 2 status updates; there is no update 7 (on the page: "),
        ("unpublish {id} update 2", "Update 2 of {id} is not on the status page (on the page: "),
        ("unpublish {id} update 0", "'0' is not an update number"),
        ("unpublish {id} update 99999999999", "is not an update number"),
        ("unpublish {id} <!channel>", "takes an incident ID, then"),
        ("unpublish {id} update <!channel>", "is not an update number"),
        ("unpublish {id} " + "x" * 3000, "takes an incident ID, then"),
        ("unpublish {id} " + "x" * 5000, "a command may be at most"),
    ],
)
async def test_bad_input_is_answered_and_changes_nothing(
    make_harness, words: str, expected: str
) -> None:
    harness = await make_harness(policy=status_policy(), STATUS_REFRESH_SECONDS=0)
    incident = await declare_with_services(harness, "Slow checkout")
    room = (await harness.services.incidents.get(incident.id)).channel_id or ""
    await reply(harness, "update identified First", channel_id=room)
    await reply(harness, "publish", channel_id=room)
    await reply(harness, "update identified Second, internal", channel_id=room)
    before = await _everything(harness)
    version = (await get(harness, "/status")).headers["ETag"]

    answer = await reply(harness, words.format(id=incident.id))
    assert expected.format(id=incident.id) in answer, answer
    assert "<!channel>" not in answer and len(answer) < 1000
    assert (await get(harness, "/status")).headers["ETag"] == version
    assert await _everything(harness) == before
    _, events = await harness.services.incidents.with_timeline(incident.id)
    assert "withdrawn" not in [e.kind for e in events]


async def test_only_publishers_may_unpublish_and_not_what_is_not_public(make_harness) -> None:
    policy = status_policy(roles={"publishers": ["U0COMMS"]})
    harness = await make_harness(policy=policy, STATUS_REFRESH_SECONDS=0)
    incident = await declare_with_services(harness, "Checkout API returns 502")
    room = (await harness.services.incidents.get(incident.id)).channel_id or ""
    answer = await reply(harness, "unpublish", channel_id=room, user_id="U0COMMS")
    assert f"{incident.id} is not on the status page; nothing changed." in answer, answer
    answer = await reply(harness, "unpublish last", channel_id=room, user_id="U0COMMS")
    assert "No status update of" in answer, answer
    await reply(harness, "publish", channel_id=room, user_id="U0COMMS")

    answer = await reply(harness, "unpublish", channel_id=room, user_id="U0ALICE")
    assert "Only publishers may" in answer, answer
    assert "Checkout API returns 502" in await _everything(harness)
    refusals = [
        (e.action, e.outcome)
        async for e in harness.services.audit.entries()
        if e.action == "incident.unpublish"
    ]
    assert refusals[-1] == ("incident.unpublish", "refused: not allowed")
    assert "is off the public status page" in await reply(
        harness, "unpublish", channel_id=room, user_id="U0COMMS"
    )
    assert "Checkout API returns 502" not in await _everything(harness)


async def test_this_process_drops_its_kept_page_at_once(make_harness) -> None:
    """Each process keeps its page for STATUS_REFRESH_SECONDS between reads of the version:
    the process that withdrew something served it on until then (here 5 minutes)."""
    harness = await make_harness(policy=status_policy(), STATUS_REFRESH_SECONDS=300)
    incident = await declare_with_services(harness, "Card payments fail")
    room = (await harness.services.incidents.get(incident.id)).channel_id or ""
    await reply(harness, f"update identified {SECRET}", channel_id=room)
    await reply(harness, "publish", channel_id=room)
    assert SECRET in await _everything(harness)
    await reply(harness, "unpublish last", channel_id=room)
    assert SECRET not in await _everything(harness)
    await reply(harness, "unpublish", channel_id=room)
    assert "Card payments fail" not in await _everything(harness)


async def test_a_withdrawal_moves_the_feed_entry_forward(make_harness) -> None:
    """A feed reader refreshes an entry it holds only when its `updated` moves on. Withdrawing
    the newest update moved the entry's time back (to the update before): readers kept the
    withdrawn words."""
    clock = FakeClock(datetime.now(UTC))
    harness = await make_harness(policy=status_policy(), STATUS_REFRESH_SECONDS=0, clock=clock)
    incident = await declare_with_services(harness, "Card payments fail")
    room = (await harness.services.incidents.get(incident.id)).channel_id or ""
    await reply(harness, "update identified Bad deploy", channel_id=room)
    clock.advance(minutes=5)
    await reply(harness, f"update identified {SECRET}", channel_id=room)
    await reply(harness, "publish", channel_id=room)

    held = atom_entries((await get(harness, "/status/feed.atom")).text)[0]
    clock.advance(minutes=5)
    await reply(harness, "unpublish last", channel_id=room)
    feed = (await get(harness, "/status/feed.atom")).text
    [entry] = atom_entries(feed)
    assert SECRET not in feed
    assert (entry.findtext(f"{ATOM}updated") or "") > (held.findtext(f"{ATOM}updated") or "")
    [shown] = json.loads((await get(harness, "/status.json")).text)["open_incidents"]
    assert shown["updated_at"][:19] + "Z" == entry.findtext(f"{ATOM}updated")


@pytest.mark.postgres
async def test_a_withdrawal_during_a_rebuild_still_rebuilds_at_the_next_request(
    make_harness, postgres_url: str
) -> None:
    """A rebuild that read the page's facts before the withdrawal committed, and ended after
    it, set the next check STATUS_REFRESH_SECONDS on: the withdrawal's "read again at the next
    request" was lost and the withdrawn words were served on."""
    harness = await make_harness(
        database_url=postgres_url, policy=status_policy(), STATUS_REFRESH_SECONDS=300
    )
    page = harness.services.status_page
    await get(harness, "/status")
    page.stale()  # as after a commit: the next request reads the version
    async with await psycopg.AsyncConnection.connect(postgres_url) as blocker:
        # The version moved (the rebuild reads the facts), and those facts are held locked.
        await blocker.execute("UPDATE status_page_version SET version = version + 1")
        await blocker.commit()
        await blocker.execute("LOCK TABLE incidents IN ACCESS EXCLUSIVE MODE")
        rebuild = asyncio.create_task(get(harness, "/status"))

        async def waiting_on_the_lock() -> bool:
            async with await psycopg.AsyncConnection.connect(postgres_url) as watcher:
                cursor = await watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                )
                row = await cursor.fetchone()
                return bool(row and row[0])

        await until(waiting_on_the_lock, "the rebuild waiting on the lock")
        page.stale()  # a withdrawal commits while the rebuild is under way
        await blocker.rollback()
    assert (await rebuild).status == 200
    checks = page.checks
    await get(harness, "/status")
    assert page.checks == checks + 1


@pytest.mark.postgres
async def test_another_replica_stops_serving_it_at_its_next_check(
    make_harness, postgres_url: str
) -> None:
    """Two processes on one database: the one that did not run the command drops the withdrawn
    update at its next read of the version (every request here: STATUS_REFRESH_SECONDS=0)."""
    first = await make_harness(
        database_url=postgres_url, policy=status_policy(), STATUS_REFRESH_SECONDS=0
    )
    second = await make_harness(
        database_url=postgres_url, policy=status_policy(), STATUS_REFRESH_SECONDS=0
    )
    incident = await declare_with_services(first, "Card payments fail")
    room = (await first.services.incidents.get(incident.id)).channel_id or ""
    await reply(first, f"update identified {SECRET}", channel_id=room)
    await reply(first, "publish", channel_id=room)
    etag = (await get(second, "/status.json")).headers["ETag"]
    assert SECRET in await _everything(second)
    await reply(first, "unpublish last", channel_id=room)
    assert (await get(second, "/status.json", **{"If-None-Match": etag})).status == 200
    assert SECRET not in await _everything(second)


@pytest.mark.postgres
async def test_with_redis_every_replica_drops_a_withdrawal_at_once(
    make_harness, postgres_url: str, redis_url: str
) -> None:
    """Two processes on one database and one Redis, each keeping its page 5 minutes between
    reads of the version: the one that did not run the command served the withdrawn update
    until its next check. The withdrawal is pushed to it now."""
    first = await make_harness(
        database_url=postgres_url,
        redis_url=redis_url,
        policy=status_policy(),
        STATUS_REFRESH_SECONDS=300,
    )
    second = await make_harness(
        database_url=postgres_url,
        redis_url=redis_url,
        policy=status_policy(),
        STATUS_REFRESH_SECONDS=300,
    )
    await until(second.services.status_push.listening.is_set, "the second replica listening")
    incident = await declare_with_services(first, "Card payments fail")
    room = (await first.services.incidents.get(incident.id)).channel_id or ""
    await reply(first, f"update identified {SECRET}", channel_id=room)
    await reply(first, "publish", channel_id=room)
    # The publication is pushed too: heard before the page is read, not in the middle.
    await until(lambda: second.services.status_push.received == 1, "the publication pushed")
    assert SECRET in await _everything(second)  # built now, kept for 5 minutes
    checks = second.services.status_page.checks
    received = second.services.status_push.received
    await reply(first, "unpublish last", channel_id=room)

    async def withdrawn_everywhere() -> bool:
        return SECRET not in await _everything(second)

    await until(withdrawn_everywhere, "the other replica dropping the withdrawn update")
    assert second.services.status_push.received == received + 1
    assert second.services.status_page.checks == checks + 1  # read the version once


async def test_with_redis_down_a_withdrawal_still_goes_through(make_harness) -> None:
    """The push to the other replicas is lost (logged): the withdrawal is made and answered
    all the same, and every process still drops it at its next read of the version."""
    harness = await make_harness(
        "sqlite",
        redis_url="redis://127.0.0.1:1/0",
        policy=status_policy(),
        STATUS_REFRESH_SECONDS=300,
    )
    incident = await declare_with_services(harness, "Card payments fail")
    room = (await harness.services.incidents.get(incident.id)).channel_id or ""
    await reply(harness, f"update identified {SECRET}", channel_id=room)
    await reply(harness, "publish", channel_id=room)
    assert SECRET in await _everything(harness)
    answer = await reply(harness, "unpublish last", channel_id=room)
    assert "is off the public status page now" in answer, answer
    assert SECRET not in await _everything(harness)
    assert not harness.services.status_push.listening.is_set()
