"""`/incident declare` end to end: signed HTTP in, Slack calls out, rows in the store."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from bot.audit import AuditLog
from bot.clock import FakeClock, SystemClock
from bot.console.workspace import RecordedCall
from bot.incidents import storage
from tests.e2e.conftest import HarnessFactory
from tests.escalation_env import policy_without_paging
from tests.harness import BotHarness
from tests.waiting import until


def _announcements(harness: BotHarness) -> list[RecordedCall]:
    """Announcements only: a P1 also opens a war room, whose messages are not counted here."""
    announce = harness.services.policy.announce_channel
    return [
        call
        for call in harness.double.calls_to("chat.postMessage")
        if call.params.get("channel") == announce
        and str(call.params.get("text", "")).startswith("Incident Update:")
    ]


async def _count(harness: BotHarness, table: str) -> int:
    async with harness.store.transaction() as tx:
        row = await tx.fetchone(f"SELECT COUNT(*) AS n FROM {table}")
    return int(row["n"]) if row else 0


async def _audited(harness: BotHarness, action: str) -> bool:
    return any([e async for e in harness.services.audit.entries() if e.action == action])


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_declare_over_signed_http(make_harness: HarnessFactory, store: str) -> None:
    harness = await make_harness(store)
    body = harness.slash("declare P1 Checkout API returns 502", user_id="U0ALICE")

    # Acked within Slack's 3 s is measured by bench/ack_latency.py, not asserted here.
    response = await harness.command("", body=body)
    assert response.status == 200

    [reply] = await harness.replies()
    assert reply["response_type"] == "ephemeral"
    assert "Declared *INC-" in reply["text"]
    await harness.settle()

    [post] = _announcements(harness)
    assert post.params["channel"] == harness.services.policy.announce_channel
    assert "Checkout API returns 502" in post.params["text"]
    rendered = str(post.params["blocks"])
    for field in ("Status", "INVESTIGATING", "P1 High", "Impact", "ETA", "Next Update", "Contact"):
        assert field in rendered
    assert "<@U0ALICE>" in rendered  # declared by

    [incident] = await harness.services.incidents.list()
    assert incident.id.startswith("INC-") and incident.title == "Checkout API returns 502"
    async with harness.store.transaction() as tx:
        stored = await storage.get(tx, incident.id)
    assert stored is not None and stored.announce_ts == post.response["ts"]
    entries = [e async for e in harness.services.audit.entries()]
    assert [(e.action, e.outcome, e.incident_id) for e in entries if e.actor == "U0ALICE"] == [
        ("incident.declare", "ok", incident.id)
    ]
    audited = await _count(harness, "audit_log")  # with the war room's own steps

    # Slack retries the very same request: nothing new.
    retry = await harness.command("", body=body, retry_num=1)
    assert retry.status == 200
    # A later command, answered and audited, then an idle outbox: the retry had its chance.
    await harness.command("list")
    [listed] = await harness.replies()
    assert incident.id in str(listed["blocks"])
    await until(lambda: _audited(harness, "incident.list"))
    await harness.settle()
    assert await _count(harness, "incidents") == 1
    assert len(_announcements(harness)) == 1
    assert len(harness.double.calls_to("conversations.create")) == 1
    assert await _count(harness, "audit_log WHERE action <> 'incident.list'") == audited


async def test_retry_after_restart_is_still_a_duplicate(harness: BotHarness) -> None:
    """The in-memory coordinator forgets on restart; the store's record does not."""
    body = harness.slash("declare P2 Search is slow")
    assert (await harness.command("", body=body)).status == 200
    await harness.replies()
    await harness.bot.services.coordinator.close()  # forget every claim, as a restart would
    assert (await harness.command("", body=body, retry_num=2)).status == 200
    [reply] = await harness.replies()
    assert "already handled" in reply["text"]
    assert await _count(harness, "incidents") == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # `/incident declare` alone opens the declaration form (tests/e2e/test_modals.py).
        ("declare P1,", "'P1,' is not a severity"),
        ("declare P7 Everything is on fire", "'P7' is not a severity"),
        ("declare P1", "Give the incident a title"),
        ("declare P1 " + "x" * 151, "keep it to 150"),
    ],
)
async def test_bad_declare_gets_usage_and_changes_nothing(
    harness: BotHarness, text: str, expected: str
) -> None:
    response = await harness.command(text)
    assert response.status == 200
    [reply] = await harness.replies()
    assert reply["response_type"] == "ephemeral"
    assert expected in reply["text"] and "Usage: `/incident declare" in reply["text"]
    assert await _count(harness, "incidents") == 0
    assert harness.double.calls_to("chat.postMessage") == []
    [entry] = [e async for e in harness.services.audit.entries()]
    assert entry.action == "incident.declare" and entry.outcome == "rejected: usage"


async def test_unknown_subcommand_and_help(harness: BotHarness) -> None:
    await harness.command("frobnicate now")
    [reply] = await harness.replies()
    assert "I don't know `/incident frobnicate`" in reply["text"]
    await harness.command("help")
    [reply] = await harness.replies()
    assert "/incident declare" in reply["text"]
    # The one list someone paged at night reads: the app's other commands are on it too.
    assert "/diagnose &lt;service&gt;" in reply["text"]
    assert "/remediate &lt;action&gt; &lt;service&gt;" in reply["text"]
    assert "/remediate help" in reply["text"]
    await harness.command("")
    [reply] = await harness.replies()
    assert "/incident declare" in reply["text"]


async def test_bad_signature_and_stale_timestamp_are_refused(harness: BotHarness) -> None:
    body = harness.slash("declare P1 Forged")
    forged = await harness.sender.send(body, signature="v0=" + "0" * 64)
    assert forged.status == 401
    stale = await harness.sender.send(
        harness.slash("declare P1 Replayed"), timestamp=int(time.time()) - 6 * 60
    )
    assert stale.status == 401
    assert await _count(harness, "incidents") == 0
    assert await _count(harness, "audit_log") == 0
    assert harness.double.calls_to("chat.postMessage") == []


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_fifty_concurrent_declares(make_harness: HarnessFactory, store: str) -> None:
    # Nobody paged at declaration, so every message and audit entry here is a declaration's.
    harness = await make_harness(store, policy=policy_without_paging())
    bodies = [harness.slash(f"declare P2 Incident number {n}") for n in range(50)]
    responses = await asyncio.gather(*(harness.command("", body=b) for b in bodies))
    assert [r.status for r in responses] == [200] * 50
    await harness.replies(50, timeout=20)
    await harness.settle()
    incidents = await harness.services.incidents.list(open_only=False)
    assert len({i.id for i in incidents}) == 50
    assert len(harness.double.calls_to("chat.postMessage")) == 50
    result = await AuditLog(harness.store, SystemClock()).verify()
    assert result.ok and result.checked == 50


async def test_announcement_survives_a_slack_outage(make_harness: HarnessFactory) -> None:
    clock = FakeClock(datetime.now(UTC))
    # Nobody paged at declaration: the injected failures all land on the announcement.
    harness = await make_harness("sqlite", clock=clock, policy=policy_without_paging())
    harness.double.http_error("chat.postMessage", status=503, times=2)
    # P2: no war room, so every chat.postMessage here is the announcement.
    await harness.command("declare P2 Payments down")
    await harness.replies()
    await harness.settle()
    assert [c.http_status for c in harness.double.calls_to("chat.postMessage")] == [503]
    assert await harness.services.dispatcher.pending_count() == 1  # kept, not lost
    for _ in range(2):  # each retry waits out its back-off
        clock.advance(minutes=1)
        await harness.services.dispatcher.deliver_due()
    statuses = [c.http_status for c in harness.double.calls_to("chat.postMessage")]
    assert statuses == [503, 503, 200]
    assert await harness.services.dispatcher.pending_count() == 0


async def test_unknown_announce_channel_is_reported_to_the_declarer(harness: BotHarness) -> None:
    harness.double.fail("chat.postMessage", error="channel_not_found", times=1)
    await harness.command("declare P1 Payments down", user_id="U0BOB")
    await harness.replies()
    await harness.settle()
    [incident] = await harness.services.incidents.list()
    declarer_dm = {c.id for c in harness.double.state.channels.values() if c.user == "U0BOB"}
    dms = [
        c
        for c in harness.double.calls_to("chat.postMessage")
        if c.ok and c.response.get("channel") in declarer_dm
    ]
    assert len(dms) == 1 and "channel_not_found" in dms[0].params["text"]
    assert incident.id in dms[0].params["text"]
    timeline = await harness.services.incidents.timeline(incident.id)
    assert "notification_failed" in [entry.kind for entry in timeline]


async def test_only_declarers_may_declare_groups_expanded_from_slack(
    make_harness: HarnessFactory,
) -> None:
    from bot.policy import default_policy_text, parse_policy

    text = default_policy_text().replace("declarers: []", "declarers: [S0SRE]")
    harness = await make_harness("sqlite", policy=parse_policy(text))
    harness.double.add_usergroup("S0SRE", ["U0CAROL"])
    await harness.command("declare P1 Not allowed", user_id="U0MALLORY")
    [refusal] = await harness.replies()
    assert "not allowed to declare" in refusal["text"]
    assert await _count(harness, "incidents") == 0
    [entry] = [e async for e in harness.services.audit.entries()]
    assert (entry.actor, entry.outcome) == ("U0MALLORY", "refused: not allowed")
    await harness.command("declare P1 Allowed", user_id="U0CAROL")
    [reply] = await harness.replies()
    assert "Declared" in reply["text"]
    assert harness.double.calls_to("usergroups.users.list")


async def test_a_retry_landing_on_another_replica_changes_nothing(
    make_harness: HarnessFactory, redis_url: str
) -> None:
    """Two bot processes on one PostgreSQL and one Redis, as behind a load balancer."""
    first = await make_harness("postgres", redis_url=redis_url)
    second = await make_harness(
        "postgres", redis_url=redis_url, double=first.double, database_url=first.store.url
    )
    body = first.slash("declare P1 Checkout API returns 502")
    answers = await asyncio.gather(
        first.command("", body=body), second.command("", body=body, retry_num=1)
    )
    assert [a.status for a in answers] == [200, 200]
    await first.replies()
    await first.settle()
    await second.settle()
    assert await _count(first, "incidents") == 1
    assert len(_announcements(first)) == 1
    assert len(first.double.calls_to("conversations.create")) == 1


async def test_database_outage_is_explained_and_nothing_half_done(
    make_harness: HarnessFactory, postgres_server: object
) -> None:
    import psycopg

    harness = await make_harness("postgres")
    url = harness.store.url  # type: ignore[attr-defined]
    dbname = url.rsplit("/", 1)[1]
    admin = await psycopg.AsyncConnection.connect(postgres_server.dsn, autocommit=True)  # type: ignore[attr-defined]
    try:
        await admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (dbname,)
        )

        # pg_terminate_backend only signals: wait until the bot's connections are really gone
        # (a pooled one could otherwise still answer a statement in between).
        async def all_gone() -> bool:
            cursor = await admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (dbname,)
            )
            row = await cursor.fetchone()
            return row is not None and row[0] == 0

        await until(all_gone, "the bot's connections to end")
        response = await harness.command("declare P1 Database is down too")
        assert response.status == 200  # acked before any database work
        [reply] = await harness.replies(timeout=15)
        assert "can't reach my database" in reply["text"]
        health = await harness.sender._session.get(  # type: ignore[union-attr]
            harness.app_url.replace("/slack/events", "/healthz")
        )
        assert health.status == 503
        assert "PostgreSQL is unavailable" in (await health.json())["store"]
    finally:
        await admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
        await admin.close()
    # The pool reconnects with back-off; /healthz says when the bot has its database again.
    healthz = harness.app_url.replace("/slack/events", "/healthz")
    for _ in range(300):
        async with harness.sender._session.get(healthz) as health:  # type: ignore[union-attr]
            if health.status == 200:
                break
        await asyncio.sleep(0.1)
    assert health.status == 200, "the bot did not get its database back within 30 s"
    await harness.command("declare P1 Database is back")
    [reply] = await harness.replies(timeout=15)
    assert "Declared" in reply["text"]
    titles = [i.title for i in await harness.services.incidents.list()]
    assert titles == ["Database is back"]


async def test_redis_outage_still_declares_and_store_still_deduplicates(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness("sqlite", redis_url="redis://127.0.0.1:1/0")
    body = harness.slash("declare P1 Redis is down")
    assert (await harness.command("", body=body)).status == 200
    [reply] = await harness.replies()
    assert "Declared" in reply["text"]
    assert (await harness.command("", body=body, retry_num=1)).status == 200
    [reply] = await harness.replies()
    assert "already handled" in reply["text"]
    assert await _count(harness, "incidents") == 1


async def test_every_invocation_is_audited_reads_included(harness: BotHarness) -> None:
    await harness.command("declare P2 Search is slow")
    await harness.replies()
    [incident] = await harness.services.incidents.list()
    for text in ("help", "list", f"show {incident.id}", f"timeline {incident.id}", "show INC-1"):
        await harness.command(text)
        await harness.replies()
    status, _ = await harness.command("P1", command="/oncall")
    assert status == 200
    await until(lambda: _audited(harness, "oncall"))  # it follows the answer on the ack
    invocations = [
        (e.action, e.outcome)
        async for e in harness.services.audit.entries()
        if e.actor == "U0ALICE"  # leave out what the bot itself did (pages)
    ]
    assert invocations == [
        ("incident.declare", "ok"),
        ("incident.help", "ok"),
        ("incident.list", "ok"),
        ("incident.show", "ok"),
        ("incident.timeline", "ok"),
        ("incident.show", "rejected: usage"),  # "INC-1" is not an incident ID
        ("oncall", "ok"),
    ]
    assert (await harness.services.audit.verify()).ok
