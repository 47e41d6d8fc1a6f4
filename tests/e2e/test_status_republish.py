"""`/incident publish <ID> update N`: a status update withdrawn by mistake put back on the
public status page (HTML, JSON, Atom) in one change; bad input changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bot.clock import FakeClock
from tests.e2e.incident_helpers import reply
from tests.e2e.status_helpers import ATOM, atom_entries, declare_with_services, get, status_policy
from tests.harness import BotHarness
from tests.waiting import until

RIGHT = "Card payments recovering after the rollback"


async def _updates(harness: BotHarness) -> list[str]:
    doc = json.loads((await get(harness, "/status.json")).text)
    return [u["text"] for shown in doc["open_incidents"] for u in shown["updates"]]


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_the_wrong_update_withdrawn_is_put_back(make_harness, store: str) -> None:
    clock = FakeClock(datetime.now(UTC))
    harness = await make_harness(
        store, policy=status_policy(), STATUS_REFRESH_SECONDS=0, clock=clock
    )
    incident = await declare_with_services(harness, "Card payments fail")
    room = (await harness.services.incidents.get(incident.id)).channel_id or ""
    await reply(harness, "update identified Bad deploy", channel_id=room)
    await reply(harness, f"update monitoring {RIGHT}", channel_id=room)
    await reply(harness, "publish", channel_id=room)
    clock.advance(minutes=5)
    await reply(harness, "unpublish last", channel_id=room)  # meant update 1
    assert await _updates(harness) == ["Bad deploy"]
    etag = (await get(harness, "/status")).headers["ETag"]
    held = atom_entries((await get(harness, "/status/feed.atom")).text)[0]

    clock.advance(minutes=5)
    answer = await reply(harness, f"publish {incident.id} update 2", channel_id="C0OTHER")
    assert f"Status update 2 of *{incident.id}* (“{RIGHT}”) is back on the public" in answer
    again = await get(harness, "/status", **{"If-None-Match": etag})
    assert again.status == 200 and RIGHT in again.text
    assert await _updates(harness) == [RIGHT, "Bad deploy"]
    # Feed readers fetch the entry again: its `updated` moved on.
    [entry] = atom_entries((await get(harness, "/status/feed.atom")).text)
    assert RIGHT in (entry.findtext(f"{ATOM}content") or "")
    assert (entry.findtext(f"{ATOM}updated") or "") > (held.findtext(f"{ATOM}updated") or "")
    # No longer withdrawn: publishing the incident again has nothing to say about it.
    answer = await reply(harness, "publish", channel_id=room)
    assert "all its status updates are already on the public status page" in answer, answer

    await harness.settle()
    _, events = await harness.services.incidents.with_timeline(incident.id)
    assert events[-1].kind == "published"
    assert events[-1].text.startswith("Status update 2 put back on the status page by")
    entries = [
        (e.actor, e.outcome, e.args)
        async for e in harness.services.audit.entries(incident_id=incident.id)
        if e.action == "incident.publish" and e.args.get("update")
    ]
    assert entries == [("U0ALICE", "ok", {"update": 2})]
    # And it can be withdrawn again.
    assert "is off the public" in await reply(harness, "unpublish update 2", channel_id=room)
    assert await _updates(harness) == ["Bad deploy"]


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("publish INC-20991231-999 update 1", "There is no incident INC-20991231-999"),
        ("publish {id} update 1", "Update 1 of {id} is on the status page already"),
        ("publish {id} update 3", "Update 3 of {id} was never withdrawn (withdrawn: update 2); "),
        ("publish {id} update 4", "has 3 status updates; there is no update 4 (withdrawn: "),
        ("publish {id} update 0", "'0' is not an update number"),
        ("publish {id} update 99999999999", "is not an update number"),
        ("publish {id} update <!channel>", "is not an update number"),
        ("publish {id} <!channel>", "takes an incident ID, then nothing or `update N`"),
        ("publish {id} " + "x" * 3000, "takes an incident ID, then nothing or `update N`"),
        ("publish {id} last", "takes an incident ID, then nothing or `update N`"),
    ],
)
async def test_bad_input_is_answered_and_changes_nothing(
    make_harness, words: str, expected: str
) -> None:
    harness = await make_harness(policy=status_policy(), STATUS_REFRESH_SECONDS=0)
    incident = await declare_with_services(harness, "Slow checkout")
    room = (await harness.services.incidents.get(incident.id)).channel_id or ""
    await reply(harness, "update identified First", channel_id=room)
    await reply(harness, "update identified Second, withdrawn", channel_id=room)
    await reply(harness, "publish", channel_id=room)
    await reply(harness, "unpublish update 2", channel_id=room)
    await reply(harness, "update identified Third, not published", channel_id=room)
    before = (await get(harness, "/status")).headers["ETag"]
    _, events = await harness.services.incidents.with_timeline(incident.id)

    answer = await reply(harness, words.format(id=incident.id))
    assert expected.format(id=incident.id) in answer, answer
    assert "<!channel>" not in answer and len(answer) < 1000
    assert (await get(harness, "/status")).headers["ETag"] == before
    assert await _updates(harness) == ["First"]
    assert len((await harness.services.incidents.with_timeline(incident.id))[1]) == len(events)


async def test_only_publishers_and_only_on_a_public_incident(make_harness) -> None:
    policy = status_policy(roles={"publishers": ["U0COMMS"]})
    harness = await make_harness(policy=policy, STATUS_REFRESH_SECONDS=0)
    incident = await declare_with_services(harness, "Checkout API returns 502")
    room = (await harness.services.incidents.get(incident.id)).channel_id or ""
    await reply(harness, "update identified First", channel_id=room, user_id="U0COMMS")
    await reply(harness, "publish", channel_id=room, user_id="U0COMMS")
    await reply(harness, "unpublish update 1", channel_id=room, user_id="U0COMMS")

    answer = await reply(harness, "publish update 1", channel_id=room, user_id="U0ALICE")
    assert "Only publishers may" in answer, answer
    assert await _updates(harness) == []
    # The whole incident taken off: the update cannot go back on its own.
    await reply(harness, "unpublish", channel_id=room, user_id="U0COMMS")
    answer = await reply(harness, "publish update 1", channel_id=room, user_id="U0COMMS")
    assert f"{incident.id} is not on the status page; publish it first" in answer, answer
    assert "Checkout API returns 502" not in (await get(harness, "/status")).text
    answer = await reply(harness, "publish", channel_id=room, user_id="U0COMMS")
    # It says the update withdrawn on its own stays off, and how to put it back (it said only
    # "with 0 status updates", as if the update were lost).
    assert "with 0 status updates. Update 1, withdrawn, stays off (`/incident publish" in answer
    answer = await reply(harness, "publish update 1", channel_id=room, user_id="U0COMMS")
    assert "is back on the public status page" in answer, answer
    assert await _updates(harness) == ["First"]


@pytest.mark.postgres
@pytest.mark.redis
async def test_an_update_put_back_is_served_by_every_replica_at_once(
    make_harness, postgres_url: str, redis_url: str
) -> None:
    """Two processes on one database and one Redis, each keeping its page 5 minutes between
    reads of the version. A withdrawal was pushed to every replica, a put-back to none: the
    replica that ran it, and the other one, kept serving the page without the update for up
    to 5 minutes (then one replica served it and the other not). Every change is pushed."""
    replicas = [
        await make_harness(
            database_url=postgres_url,
            redis_url=redis_url,
            policy=status_policy(),
            STATUS_REFRESH_SECONDS=300,
        )
        for _ in range(2)
    ]
    first = replicas[0]
    for replica in replicas:
        await until(replica.services.status_push.listening.is_set, "each replica listening")
    incident = await declare_with_services(first, "Card payments fail")
    room = (await first.services.incidents.get(incident.id)).channel_id or ""
    await reply(first, "update identified Bad deploy", channel_id=room)
    await reply(first, f"update monitoring {RIGHT}", channel_id=room)
    await reply(first, "publish", channel_id=room)
    await reply(first, "unpublish last", channel_id=room)  # meant update 1
    for replica in replicas:
        assert await _updates(replica) == ["Bad deploy"]  # built now, kept for 5 minutes

    answer = await reply(first, f"publish {incident.id} update 2", channel_id="C0OTHER")
    assert "is back on the public" in answer, answer
    for replica in replicas:

        async def put_back(replica: BotHarness = replica) -> bool:
            return await _updates(replica) == [RIGHT, "Bad deploy"]

        await until(put_back, "every replica serving the update put back")
