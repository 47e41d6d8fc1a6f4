"""The public status page over HTTP: nothing is public until a publisher publishes it; then
its status updates show, and notes, roles and people never do. On both stores."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from bot.clock import FakeClock
from bot.slack import modals
from bot.status import storage
from tests.e2e.incident_helpers import posts, reply
from tests.e2e.status_helpers import (
    atom_entries,
    declare_with_services,
    get,
    status_policy,
)
from tests.e2e.test_modals import _inputs, _open_update_form, _select
from tests.harness import BotHarness
from tests.waiting import until

NOTE = "Internal: the primary db01 password was rotated by hand"


def _answered(harness: BotHarness, words: str) -> str:
    """The ephemeral answer holding `words` ("" until there is one)."""
    return next((e["text"] for e in harness.double.ephemerals if words in e["text"]), "")


async def _public(harness: BotHarness) -> dict:
    got = await get(harness, "/status.json")
    assert got.status == 200 and got.headers["Content-Type"].startswith("application/json")
    return json.loads(got.text)


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_publish_shows_updates_and_never_notes_roles_or_people(
    make_harness, store: str
) -> None:
    harness = await make_harness(store, policy=status_policy(), STATUS_REFRESH_SECONDS=0)
    incident = await declare_with_services(
        harness, "Card payments fail", impact="EU card payments fail"
    )
    room = (await harness.services.incidents.get(incident.id)).channel_id or ""
    await reply(
        harness, "update identified Bad deploy of <@U0BOB|bob>, rolling back", channel_id=room
    )
    await reply(harness, f"note {NOTE}", channel_id=room)
    await reply(harness, "assign tech-lead <@U0CAROL>", channel_id=room)

    # Nothing is public by default.
    before = await _public(harness)
    assert before["open_incidents"] == [] and before["state"] == "operational"
    assert "Card payments fail" not in (await get(harness, "/status")).text

    answer = await reply(harness, "publish", channel_id=room, user_id="U0BOB")
    assert "on the public status page now, with 1 status update" in answer
    await harness.settle()

    doc = await _public(harness)
    [shown] = doc["open_incidents"]
    assert (shown["id"], shown["title"], shown["status"]) == (
        incident.id,
        "Card payments fail",
        "identified",
    )
    assert [u["text"] for u in shown["updates"]] == ["Bad deploy of @bob, rolling back"]
    assert {c["name"]: c["state"] for c in doc["components"]} == {
        "Checkout": "partial_outage",  # P1
        "payments": "operational",
    }
    assert doc["state"] == "partial_outage" and shown["components"] == ["Checkout"]
    everything = json.dumps(doc) + (await get(harness, "/status")).text
    everything += (await get(harness, "/status/feed.atom")).text
    for secret in ("db01", "rotated", "U0CAROL", "U0ALICE", "U0BOB", "tech-lead", "<@"):
        assert secret not in everything, secret

    # Publishing is an incident change: a timeline line, an audit entry, a notice.
    _, events = await harness.services.incidents.with_timeline(incident.id)
    assert events[-1].kind == "published" and "U0BOB" in events[-1].text
    [entry] = [
        e
        async for e in harness.services.audit.entries(incident_id=incident.id)
        if e.action == "incident.publish"
    ]
    assert (entry.actor, entry.outcome, entry.args) == (
        "U0BOB",
        "ok",
        {"updates": 1, "newly_public": True},
    )
    # A later update typed as a command stays internal until published too.
    await reply(harness, "update monitoring Error rate back to normal", channel_id=room)
    assert [u["text"] for u in (await _public(harness))["open_incidents"][0]["updates"]] == [
        "Bad deploy of @bob, rolling back"
    ]
    assert "Published 1 more status update of" in await reply(harness, "publish", channel_id=room)
    await reply(harness, "resolve Rolled back to 4.2.0", channel_id=room)
    await reply(harness, "publish", channel_id=room)
    await harness.settle()

    doc = await _public(harness)
    assert doc["open_incidents"] == [] and doc["state"] == "operational"
    [resolved] = doc["resolved_incidents"]
    assert [u["status"] for u in resolved["updates"]] == ["resolved", "monitoring", "identified"]
    assert resolved["resolved_at"] is not None
    [entry_xml] = atom_entries((await get(harness, "/status/feed.atom")).text)
    assert incident.id in (entry_xml.findtext("{http://www.w3.org/2005/Atom}id") or "")


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_a_reopened_incident_moves_on_the_page_and_its_reason_can_be_published(
    make_harness, store: str
) -> None:
    """A published incident resolved, then reopened: the page showed it open again under its
    last word "Resolved: Rolled back", its time (the feed entry's `updated`) did not move,
    and `/incident publish` answered that everything was published already: the reason it
    reopened could never be told."""
    harness = await make_harness(store, policy=status_policy(), STATUS_REFRESH_SECONDS=0)
    incident = await declare_with_services(harness, "Card payments fail")
    room = (await harness.services.incidents.get(incident.id)).channel_id or ""
    await reply(harness, "publish", channel_id=room)
    await reply(harness, "resolve Rolled back", channel_id=room)
    await reply(harness, "publish", channel_id=room)
    [resolved] = (await _public(harness))["resolved_incidents"]
    reason = "Errors are back after the rollback"
    await reply(harness, f"reopen {incident.id} {reason}", channel_id=room)
    doc = await _public(harness)
    [shown] = doc["open_incidents"]
    assert shown["status"] == "investigating" and shown["updated_at"] > resolved["updated_at"]
    [entry] = atom_entries((await get(harness, "/status/feed.atom")).text)
    assert entry.findtext("{http://www.w3.org/2005/Atom}updated") == shown["updated_at"][:19] + "Z"
    answer = await reply(harness, "publish", channel_id=room)
    assert "Published 1 more status update of" in answer, answer
    [shown] = (await _public(harness))["open_incidents"]
    assert [(u["status"], u["text"]) for u in shown["updates"]] == [
        ("investigating", reason),
        ("resolved", "Rolled back"),
    ]
    # Reopened again without a reason: the update says that much.
    await reply(harness, "resolve Fixed for real", channel_id=room)
    await reply(harness, f"reopen {incident.id}", channel_id=room)
    await reply(harness, "publish", channel_id=room)
    [shown] = (await _public(harness))["open_incidents"]
    assert shown["updates"][0]["text"] == "Reopened."


async def test_caching_headers_and_a_304_for_the_same_etag(make_harness) -> None:
    harness = await make_harness(policy=status_policy(), STATUS_REFRESH_SECONDS=0)
    for path, kind in (
        ("/status", "text/html"),
        ("/status.json", "application/json"),
        ("/status/feed.atom", "application/atom+xml"),
    ):
        first = await get(harness, path)
        assert first.status == 200 and first.headers["Content-Type"].startswith(kind)
        assert first.headers["Cache-Control"].startswith("public, max-age=")
        etag = first.headers["ETag"]
        again = await get(harness, path, **{"If-None-Match": etag})
        assert (again.status, again.text, again.headers["ETag"]) == (304, "", etag)
        # Another tag (the page changed since) gets the whole document.
        assert (await get(harness, path, **{"If-None-Match": '"old"'})).status == 200
    incident = await declare_with_services(harness, "Slow checkout", severity="P2")
    old = (await get(harness, "/status")).headers["ETag"]
    await reply(harness, f"publish {incident.id}")
    changed = await get(harness, "/status", **{"If-None-Match": old})
    assert changed.status == 200 and "Slow checkout" in changed.text


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_update_form_checkbox_publishes_that_update(make_harness, store: str) -> None:
    harness = await make_harness(store, policy=status_policy(), STATUS_REFRESH_SECONDS=0)
    incident = await declare_with_services(harness, "Checkout API returns 502")
    room = (await harness.services.incidents.get(incident.id)).channel_id or ""
    await reply(
        harness, "update identified An internal first guess impact EU checkouts", channel_id=room
    )
    view = await _open_update_form(harness, room, "U0ALICE")
    assert _inputs(view)["publish"]["type"] == "checkboxes"
    values = {
        "status": {"value": _select("monitoring")},
        "message": {"value": "A fix is deployed; we are watching error rates"},
        "publish": {"value": {"type": "checkboxes", "selected_options": [{"value": "publish"}]}},
    }
    response = await harness.submit_view(modals.UPDATE_VIEW, values, view=view, user_id="U0ALICE")
    assert response.status == 200 and not response.body
    await until(lambda: _answered(harness, "MONITORING"), "the form's answer")
    assert "public status page" in _answered(harness, "MONITORING")
    [shown] = (await _public(harness))["open_incidents"]
    # This update only: the earlier one stays internal.
    assert [u["text"] for u in shown["updates"]] == [
        "A fix is deployed; we are watching error rates"
    ]
    # With the impact its form showed (left as prefilled), though the update that set it is not.
    assert shown["impact"] == "EU checkouts"
    # Said in the room and kept on the timeline, as `/incident publish` is: the war room and
    # the report showed no sign that this update (and the incident) had gone public.
    await harness.settle()
    said = [str(c.params["text"]) for c in posts(harness, room)]
    assert any("Published to the status page by <@U0ALICE> with this update" in t for t in said)
    _, events = await harness.services.incidents.with_timeline(incident.id)
    [published] = [e for e in events if e.kind == "updated" and e.said.startswith("A fix")]
    assert "published to the status page" in published.text, published.text
    [entry] = [e async for e in harness.services.audit.entries() if e.action == "incident.update"][
        -1:
    ]
    assert entry.args["publish"] is True


async def test_only_publishers_may_publish_and_a_refusal_changes_nothing(make_harness) -> None:
    policy = status_policy(roles={"publishers": ["U0COMMS"]})
    harness = await make_harness(policy=policy, STATUS_REFRESH_SECONDS=0)
    incident = await declare_with_services(harness, "Checkout API returns 502")
    room = (await harness.services.incidents.get(incident.id)).channel_id or ""
    await reply(harness, "update identified Bad deploy", channel_id=room)

    answer = await reply(harness, "publish", channel_id=room, user_id="U0ALICE")
    assert "Only publishers may" in answer
    view = await _open_update_form(harness, room, "U0ALICE")
    values = {
        "status": {"value": _select("monitoring")},
        "message": {"value": "Fixed, watching"},
        "publish": {"value": {"type": "checkboxes", "selected_options": [{"value": "publish"}]}},
    }
    await harness.submit_view(modals.UPDATE_VIEW, values, view=view, user_id="U0ALICE")
    # The form is gone: the refusal gives the text back rather than lose it.
    await until(lambda: _answered(harness, ">Fixed, watching"), "the refusal")
    assert "Only publishers may" in _answered(harness, ">Fixed, watching")
    # Neither the update nor anything public happened.
    assert (await harness.services.incidents.get(incident.id)).status.value == "identified"
    assert (await _public(harness))["open_incidents"] == []
    refusals = [
        (e.action, e.outcome)
        async for e in harness.services.audit.entries()
        if e.outcome.startswith("refused")
    ]
    assert refusals == [
        ("incident.publish", "refused: not allowed"),
        ("incident.update", "refused: not allowed"),
    ]

    assert "on the public status page now" in await reply(
        harness, "publish", channel_id=room, user_id="U0COMMS"
    )
    assert len((await _public(harness))["open_incidents"]) == 1


async def test_hits_between_checks_are_served_from_memory(make_harness) -> None:
    harness = await make_harness(policy=status_policy(), STATUS_REFRESH_SECONDS=300)
    page = harness.services.status_page
    incident = await declare_with_services(harness, "Checkout API returns 502")
    for _ in range(20):
        for path in ("/status", "/status.json", "/status/feed.atom"):
            assert (await get(harness, path)).status == 200
    assert page.builds == 1
    # Another process's change bumps the version in the store (its push lost): this process
    # looks only every 300 s.
    async with harness.services.store.transaction() as tx:
        await storage.bump(tx)
    assert (await _public(harness))["open_incidents"] == [] and page.builds == 1
    # Its own change it shows at once (and pushes to the others).
    await reply(harness, f"publish {incident.id}")
    assert len((await _public(harness))["open_incidents"]) == 1 and page.builds == 2


@pytest.mark.postgres
async def test_the_last_documents_are_served_while_the_store_cannot_answer(make_harness) -> None:
    harness = await make_harness(
        "postgres",
        policy=status_policy(),
        STATUS_REFRESH_SECONDS=0,
        DATABASE_POOL_SIZE=1,
        DATABASE_QUEUE_SECONDS=0.5,
    )
    incident = await declare_with_services(harness, "Checkout API returns 502")
    await reply(harness, f"publish {incident.id}")
    await harness.settle()
    async with harness.store.transaction() as tx:  # someone holds the only connection
        await tx.fetchone("SELECT 1 AS one")
        # Never built in this process: nothing to fall back on.
        down = await get(harness, "/status")
    assert (down.status, down.headers["Retry-After"]) == (503, "30")
    assert "cannot be shown right now" in down.text

    up = await get(harness, "/status")
    assert up.status == 200 and "Checkout API returns 502" in up.text
    async with harness.store.transaction() as tx:
        await tx.fetchone("SELECT 1 AS one")
        stale = await get(harness, "/status")
    assert (stale.status, stale.headers["ETag"], stale.text) == (200, up.headers["ETag"], up.text)


@pytest.mark.postgres
async def test_a_burst_while_the_database_is_down_waits_for_one_failed_read(make_harness) -> None:
    """Nothing built yet and the database down: each request of a burst queued on the page's
    lock and then waited out the store's bound in turn (a hundred requests, a hundred waits).
    One read fails; the others, and those until the next check, are answered at once."""
    harness = await make_harness(
        "postgres",
        policy=status_policy(),
        STATUS_REFRESH_SECONDS=60,
        DATABASE_POOL_SIZE=1,
        DATABASE_QUEUE_SECONDS=0.3,
    )
    page = harness.services.status_page
    async with harness.store.transaction() as tx:  # someone holds the only connection
        await tx.fetchone("SELECT 1 AS one")
        burst = await asyncio.gather(*(get(harness, "/status") for _ in range(6)))
        later = await get(harness, "/status.json")
    for got in [*burst, later]:
        assert (got.status, got.headers["Retry-After"]) == (503, "30"), got
        assert "cannot be shown right now" in got.text
    assert page.checks == 1 and page.builds == 0


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_a_drill_never_reaches_the_status_page(make_harness, store: str) -> None:
    """Practice is not news: `/incident publish` refuses a drill and changes nothing, and the
    page's one query leaves a drill out even if it were marked public."""
    harness = await make_harness(store, policy=status_policy(), STATUS_REFRESH_SECONDS=0)
    assert (await reply(harness, "drill P1 checkout: database failover")).startswith("[DRILL]")
    await harness.settle()
    [drill] = (await harness.services.incidents.list_page(drills=True)).incidents
    room = drill.channel_id or ""
    await reply(harness, "update identified failing over to the replica", channel_id=room)
    answer = await reply(harness, "publish", channel_id=room, user_id="U0BOB")
    assert "is a drill" in answer and "never goes on the status page" in answer
    _, events = await harness.services.incidents.with_timeline(drill.id)
    assert "published" not in [e.kind for e in events]

    async with harness.services.store.transaction() as tx:
        await tx.execute("UPDATE incidents SET public_at = 1 WHERE id = ?", (drill.id,))
        await tx.execute("UPDATE status_page_version SET version = version + 1 WHERE id = 1")
    doc = await _public(harness)
    assert doc["open_incidents"] == [] and doc["state"] == "operational"
    assert "database failover" not in (await get(harness, "/status")).text


async def test_an_incident_resolved_before_the_pages_window_is_not_said_published(
    make_harness,
) -> None:
    # The page lists incidents resolved in the last 90 days: publishing an older one was
    # answered "on the public status page now" (and recorded so) while nobody could see it.
    clock = FakeClock(datetime.now(UTC))
    harness = await make_harness(policy=status_policy(), clock=clock, STATUS_REFRESH_SECONDS=0)
    incident = await declare_with_services(harness, "Old outage")
    await reply(harness, f"resolve {incident.id} Fixed long ago")
    clock.advance(days=91)
    answer = await reply(harness, f"publish {incident.id}", user_id="U0BOB")
    assert "resolved more than 90 days ago" in answer and "nothing changed" in answer, answer
    _, events = await harness.services.incidents.with_timeline(incident.id)
    assert "published" not in [e.kind for e in events]
    assert (await _public(harness))["resolved_incidents"] == []


async def test_a_drills_update_form_offers_no_publishing_and_refuses_it(make_harness) -> None:
    """The form once offered "Publish to the status page" in a drill, and ticking it
    answered "It is on the public status page too." while nothing was published (the
    status listener drops drills unsaid), with `publish: true` in the audit log."""
    harness = await make_harness(policy=status_policy(), STATUS_REFRESH_SECONDS=0)
    assert (await reply(harness, "drill P1 checkout: database failover")).startswith("[DRILL]")
    await harness.settle()
    [drill] = (await harness.services.incidents.list_page(drills=True)).incidents
    room = drill.channel_id or ""
    view = await _open_update_form(harness, room, "U0ALICE")
    assert "publish" not in _inputs(view)
    values = {  # a form from before, or a forged one, still asks to publish
        "status": {"value": _select("monitoring")},
        "message": {"value": "Failed over to the replica"},
        "publish": {"value": {"type": "checkboxes", "selected_options": [{"value": "publish"}]}},
    }
    response = await harness.submit_view(modals.UPDATE_VIEW, values, view=view, user_id="U0ALICE")
    assert response.status == 200
    await until(lambda: _answered(harness, "is a drill"), "the refusal")
    assert "never goes on the status page" in _answered(harness, "is a drill")
    assert not _answered(harness, "public status page too")
    after = await harness.services.incidents.get(drill.id)
    assert after.status == drill.status  # the refusal changed nothing
    updates = [e async for e in harness.services.audit.entries() if e.action == "incident.update"]
    assert all(e.outcome != "ok" for e in updates)
    assert (await _public(harness))["open_incidents"] == []


async def test_a_character_xml_forbids_never_breaks_the_feed(make_harness) -> None:
    """U+FFFE and U+FFFF are fine in a Slack message and in JSON, but not in XML: typed into
    a published title or update, they made the whole Atom feed unreadable to every reader.
    They are shown as U+FFFD on the page and in its feeds."""
    harness = await make_harness("sqlite", policy=status_policy(), STATUS_REFRESH_SECONDS=0)
    answer = await reply(harness, "declare P2 Search \ufffe is slow")
    assert "Declared" in answer
    await harness.settle()
    [incident] = await harness.services.incidents.list()
    await reply(harness, f"update {incident.id} identified Index \uffff rebuilt")
    await reply(harness, f"publish {incident.id}", user_id="U0BOB")
    await harness.settle()
    feed = await get(harness, "/status/feed.atom")
    [entry] = atom_entries(feed.text)  # parses
    title = entry.findtext("{http://www.w3.org/2005/Atom}title", "")
    assert title.startswith("Search \ufffd is slow")
    assert "Index \ufffd rebuilt" in feed.text
    doc = await _public(harness)
    assert doc["open_incidents"][0]["title"] == "Search \ufffd is slow"
    assert "\ufffe" not in (await get(harness, "/status")).text


async def test_a_secret_pasted_into_a_published_update_never_reaches_the_public(
    make_harness,
) -> None:
    """A password in a pasted connection string, or a Slack token, is masked on the page and
    its feeds as it is on a pinned timeline line and in the audit log: the page is the most
    public place the bot writes to, readable by anyone until someone withdraws it."""
    harness = await make_harness("sqlite", policy=status_policy(), STATUS_REFRESH_SECONDS=0)
    assert "Declared" in await reply(harness, "declare P2 Checkout db password=s3cr3t-title")
    await harness.settle()
    [incident] = await harness.services.incidents.list()
    await reply(
        harness,
        f"update {incident.id} identified Replica lag on postgresql://app:hunter2-pw@db01/prod,"
        " bot token xoxb-1111-2222-abcdefABCDEF rotated",
    )
    await reply(harness, f"publish {incident.id}", user_id="U0BOB")
    await harness.settle()
    for path in ("/status", "/status.json", "/status/feed.atom"):
        text = (await get(harness, path)).text
        assert "Replica lag on postgresql://app:" in text, path  # the update is there
        for secret in ("hunter2-pw", "xoxb-1111", "s3cr3t-title"):
            assert secret not in text, (path, secret)
