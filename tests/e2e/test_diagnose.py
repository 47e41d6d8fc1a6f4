"""`/diagnose` end to end: signed slash commands and clicks in, the summary, its thread and
buttons out through the Slack double; roles, the audit log and the incident timeline."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from bot.clock import FakeClock
from bot.incidents.schemas import DeclareIncident
from bot.models import Actor, Severity
from bot.slack import blocks
from bot.slack import diagnosis_blocks as views
from bot.slack.rich import mrkdwn
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import pinned_summary, policy_with
from tests.harness import BotHarness
from tests.waiting import until

pytestmark = pytest.mark.redis


@pytest.fixture
def cache_url(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    client = redis.Redis.from_url(redis_url)
    client.config_resetstat()
    for n in range(5):  # five misses, no hit: a cold cache
        client.get(f"missing:{n}")
    client.close()
    # A password in the DSN must never reach Slack or the audit log.
    monkeypatch.setenv("CACHE_URL", redis_url.replace("redis://", "redis://:pw-never-shown@"))
    return redis_url


async def _harness(make_harness: HarnessFactory, **policy: Any) -> BotHarness:
    return await make_harness(
        "sqlite",
        policy=policy_with(
            services={"cache": {"redis": {"url_env": "CACHE_URL"}}},
            **policy,
        ),
    )


def _posted(harness: BotHarness, channel: str) -> list[dict[str, Any]]:
    """Messages the bot posted in `channel`, as Slack stored them (ts, thread_ts, blocks)."""
    return [
        c.response["message"] | {"thread_ts": c.params.get("thread_ts")}
        for c in harness.double.calls_to("chat.postMessage")
        if c.ok and c.response.get("channel") == channel
    ]


def _summary(harness: BotHarness, channel: str) -> dict[str, Any]:
    [summary] = [
        m
        for m in _posted(harness, channel)
        if str(m.get("text", "")).startswith("Diagnosis of") and not m.get("thread_ts")
    ]
    return summary


async def test_diagnose_posts_a_graded_summary_with_evidence_and_buttons(
    make_harness: HarnessFactory, cache_url: str
) -> None:
    harness = await _harness(make_harness)
    response = await harness.command("cache", command="/diagnose", channel_id="C0GENERAL")
    assert response.status == 200
    [started] = await harness.replies()  # said once the caller and the service are checked
    assert started["text"].startswith("Diagnosing `cache`")
    await harness.double.wait_for("chat.postMessage", 2)
    summary = _summary(harness, "C0GENERAL")
    text = str(summary["blocks"])
    assert summary["text"].startswith("Diagnosis of cache: WARN")
    assert "Cache hit ratio" in text and "0.0 % (0 hits, 5 misses)" in text
    assert "warn &lt; 80 %" in text  # the threshold it was held against, escaped
    [button] = [e for b in summary["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert button["text"]["text"] == "Warm the cache"
    replies = [m for m in _posted(harness, "C0GENERAL") if m.get("thread_ts")]
    assert replies and all(r["thread_ts"] == summary["ts"] for r in replies)
    posted = json.dumps(_posted(harness, "C0GENERAL"))
    assert "pw-never-shown" not in posted

    # The button says what it would do, and does nothing.
    click = await harness.click(
        button["action_id"],
        value=button["value"],
        message=summary,
        channel_id="C0GENERAL",
        message_ts=summary["ts"],
        user_id="U0ALICE",
    )
    assert click.status == 200
    [answer] = await harness.replies()
    assert answer["text"] == (
        "This suggestion is done by hand: pre-load the hot keys. The bot has nothing to run"
        " for it, so nothing was changed."
    )  # not "Remediations are not enabled in this version of the bot": they are

    # A read-only answer is audited once it has been given: wait for the entry itself.
    async def previewed() -> bool:
        actions = [e.action async for e in harness.services.audit.entries()]
        return "remediation.preview" in actions

    await until(previewed, "the preview's audit entry")
    entries = [e async for e in harness.services.audit.entries()]
    [run] = [e for e in entries if e.action == "diagnose.run"]
    assert run.outcome == "ok: WARN" and run.args["grades"]["redis.hit_ratio"] == "WARN"
    assert run.target == "service:cache"
    assert [e.outcome for e in entries if e.action == "remediation.preview"] == ["ok"]
    assert "pw-never-shown" not in json.dumps([e.to_json() for e in entries])


async def test_only_responders_may_diagnose_and_unknown_services_are_named(
    make_harness: HarnessFactory, cache_url: str
) -> None:
    harness = await _harness(make_harness, roles={"responders": ["U0SRE"]})
    await harness.command("cache", command="/diagnose", user_id="U0EVE")
    [refused] = await harness.replies()
    assert "Only responders may run diagnostics" in refused["text"]
    acked = await harness.command("<!channel> now", command="/diagnose", user_id="U0SRE")
    assert "Diagnosing" not in str(acked.body)  # not promised, then refused
    [unknown] = await harness.replies()
    assert "No service called 'channel'" in unknown["text"] and "cache" in unknown["text"]
    assert "<!channel>" not in unknown["text"]
    await harness.command("cache nosuchcheck", command="/diagnose", user_id="U0SRE")
    [usage] = await harness.replies()
    assert "No check called 'nosuchcheck'" in usage["text"] and "redis" in usage["text"]
    assert harness.double.calls_to("chat.postMessage") == []
    outcomes = [
        e.outcome async for e in harness.services.audit.entries() if e.action == "diagnose.run"
    ]
    assert outcomes[0] == "refused: not allowed" and outcomes[2] == "rejected: usage"


@pytest.mark.parametrize(
    ("user", "text", "refusal"),
    [
        ("U0EVE", "cache", "Only responders may run diagnostics"),
        ("U0SRE", "cache " + "x" * 4_500, "a command may be at most 4,000"),
        ("U0SRE", "cache\x00", "control character (U+0000)"),
        ("U0SRE", "cache <!here>", "No check called"),
    ],
)
async def test_a_refused_diagnosis_is_never_first_announced_as_started(
    make_harness: HarnessFactory, cache_url: str, user: str, text: str, refusal: str
) -> None:
    # Issue 15: each of these was first answered "Diagnosing `cache`: every check runs now",
    # then refused; `cache\x00` was told there is no service called 'cache'.
    harness = await _harness(make_harness, roles={"responders": ["U0SRE"]})
    response = await harness.command(text, command="/diagnose", user_id=user)
    assert response.status == 200
    answers = [str(response.body)]
    if "Usage" not in str(response.body):  # refused on the ack itself, or in one reply
        answers += [r["text"] for r in await harness.replies()]
    assert "Diagnosing" not in " ".join(answers)
    assert refusal in answers[-1] and "No service called" not in answers[-1]
    assert "<!here>" not in answers[-1]
    assert harness.double.calls_to("chat.postMessage") == []

    async def outcomes() -> list[str]:
        return [e.outcome async for e in harness.services.audit.entries()]

    async def audited() -> bool:
        return bool(await outcomes())

    await until(audited, "the refusal to be audited")
    [outcome] = await outcomes()
    assert outcome.startswith(("refused", "rejected"))
    assert len(harness.double.responses) == harness.responses_seen  # that was the only answer


async def test_in_a_war_room_the_summary_joins_the_timeline_and_the_card_has_diagnose(
    make_harness: HarnessFactory, cache_url: str
) -> None:
    harness = await _harness(make_harness)
    incident = await harness.services.incidents.declare(
        DeclareIncident(severity=Severity.P1, title="Cache cold", services=("cache",)),
        Actor("U0ALICE"),
    )
    await harness.settle()
    incident = await harness.services.incidents.get(incident.id)
    room = incident.channel_id or ""
    card = pinned_summary(harness, room)
    [diagnose] = [
        e
        for b in card["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == views.DIAGNOSE_ACTION
    ]
    assert diagnose["value"] == incident.id and blocks.ACK_ACTION in str(card["blocks"])
    response = await harness.click(
        views.DIAGNOSE_ACTION,
        value=incident.id,
        message=card,
        channel_id=room,
        message_ts=card["ts"],
        user_id="U0ALICE",
    )
    assert response.status == 200
    summary = None
    for _ in range(100):
        try:
            summary = _summary(harness, room)
            break
        except ValueError:
            posted = len(harness.double.calls_to("chat.postMessage"))
            await harness.double.wait_for("chat.postMessage", posted + 1)
    assert summary is not None and summary["text"].startswith("Diagnosis of cache: WARN")
    _, events = await harness.services.incidents.with_timeline(incident.id)
    [entry] = [e for e in events if e.kind == "diagnosed"]
    assert mrkdwn(entry.parts) == "Diagnosis of cache by <@U0ALICE>: WARN (redis.hit_ratio)"


async def test_a_slack_500_delays_the_summary_and_it_arrives_once(
    make_harness: HarnessFactory, cache_url: str
) -> None:
    """The summary used to be posted straight from the listener: a 500 lost it for good."""
    clock = FakeClock(datetime.now(UTC))
    harness = await make_harness(
        "sqlite",
        clock=clock,
        policy=policy_with(services={"cache": {"redis": {"url_env": "CACHE_URL"}}}),
    )
    harness.double.http_error(
        "chat.postMessage", status=500, body="Internal Server Error", channel="C0GENERAL"
    )
    response = await harness.command("cache", command="/diagnose", channel_id="C0GENERAL")
    assert response.status == 200
    await harness.double.wait_for("chat.postMessage", 1)
    await harness.settle()
    assert [c.http_status for c in harness.double.calls_to("chat.postMessage")] == [500]
    assert not _posted(harness, "C0GENERAL")
    # Recorded already, in the transaction that queued the summary.
    assert [e.action async for e in harness.services.audit.entries()].count("diagnose.run") == 1

    clock.advance(seconds=2.4)  # the first back-off (2 s +-20%)
    await harness.settle()
    clock.advance(seconds=2)
    await harness.settle()
    summary = _summary(harness, "C0GENERAL")  # exactly one
    assert summary["text"].startswith("Diagnosis of cache: WARN")
    replies = [m for m in _posted(harness, "C0GENERAL") if m.get("thread_ts")]
    assert replies and all(r["thread_ts"] == summary["ts"] for r in replies)
    assert await harness.services.dispatcher.pending_count() == 0


async def test_a_diagnosis_the_store_cannot_record_is_posted_through_the_notifier(
    make_harness: HarnessFactory, cache_url: str, tmp_path: Path
) -> None:
    # Issue 15: with the store unable to take the record, commands/diagnose.py posted the
    # summary itself and caught only SlackApiError: Slack's answer with a text body (an
    # AttributeError inside slack_sdk) became "Something went wrong ... nothing was changed".
    database = tmp_path / "held.db"
    harness = await make_harness(
        database_url=f"sqlite:///{database}",
        policy=policy_with(services={"cache": {"redis": {"url_env": "CACHE_URL"}}}),
        DATABASE_QUEUE_SECONDS=0.5,
    )
    harness.double.http_error("chat.postMessage", status=200, body="OK")
    holder = sqlite3.connect(database, isolation_level=None, timeout=10, check_same_thread=False)
    # Another writer holds the database: the record waits. Taken in a thread: waiting for the
    # lock on the event loop would stop the bot's own transaction in flight from ending.
    await asyncio.to_thread(holder.execute, "BEGIN IMMEDIATE")
    try:
        await harness.command("cache", command="/diagnose", channel_id="C0GENERAL")
        answers = [r["text"] for r in await harness.replies(3, timeout=15)]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert answers[0].startswith("Diagnosing `cache`")
    assert "could not post the diagnosis" in answers[1] and "not JSON" in answers[1]
    assert answers[2] == views.not_recorded()


async def test_a_critical_diagnosis_without_evidence_never_says_nothing_stood_out(
    make_harness: HarnessFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis unreachable is CRIT, and has no statements, log lines or events to show: its
    thread once said "Nothing stood out", beside a red summary, to someone paged at night."""
    monkeypatch.setenv("CACHE_URL", "redis://127.0.0.1:9/0")
    harness = await _harness(make_harness)
    await harness.command("cache", command="/diagnose", user_id="U0SRE")
    await harness.replies()
    await harness.settle()
    await until(lambda: len(_posted(harness, "C0GENERAL")) >= 2, "the summary and its thread")
    summary = _summary(harness, "C0GENERAL")
    assert "CRIT" in summary["text"]
    assert "· 1 check in " in json.dumps(summary["blocks"], ensure_ascii=False)  # not "checks"
    [thread] = [m for m in _posted(harness, "C0GENERAL") if m.get("thread_ts")]
    shown = json.dumps(thread)
    assert "othing stood out" not in shown
    assert "No evidence to show for cache" in thread["text"]
    assert "the findings in the summary are all there is" in shown
