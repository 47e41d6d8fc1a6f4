"""An outbox delivery's wait for its Slack pace slot is not spent out of its handler's
timeout (bot.outbox.budget): a slow call after a long wait is not cut off mid-flight and
made again, and a wait longer than the delivery's claim allows hands the effect back before
its call, each message posted once. Real parts: the Slack double over HTTP, the paced client,
a SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import build_client
from bot.clock import FakeClock
from bot.console.workspace import SlackDouble
from bot.outbox import Effect, OutboxDispatcher
from bot.slack.client import PacedWebClient
from bot.slack.notifier import SlackNotifier
from bot.slack.pace import LocalPacer, keys_for
from bot.store import migrate
from bot.store.sqlite import SqliteStore
from tests.contract.outbox_rows import NOW, queued
from tests.harness import openapi_spec


@pytest.fixture
async def slack() -> AsyncIterator[SlackDouble]:
    double = SlackDouble(openapi_spec=openapi_spec(), users={"U0ALICE": {"name": "alice"}})
    await double.start()
    yield double
    await double.stop()


@pytest.fixture
async def client(slack: SlackDouble) -> AsyncIterator[PacedWebClient]:
    made = build_client(slack.bot_token, slack.api_url, pacer=LocalPacer())
    assert isinstance(made, PacedWebClient)
    made.keep_connections()
    yield made
    await made.close_connections()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(f"sqlite:///{tmp_path}/chatops.db")
    await opened.open()
    await migrate(opened)
    yield opened
    await opened.close()


async def _dispatcher(store: SqliteStore, client: PacedWebClient) -> OutboxDispatcher:
    notifier = SlackNotifier(client)

    async def post(effect: Effect) -> None:
        await notifier.post("U0ALICE", effect.payload["text"])

    # Timeout 1 s; a claim of 8 s lets a delivery run 3 s (half the claim, less a margin).
    dispatcher = OutboxDispatcher(store, FakeClock(NOW), claim_seconds=8.0, handler_timeout=1.0)
    dispatcher.register("post", post)
    return dispatcher


async def _busy(client: PacedWebClient, seconds: float) -> None:
    """The channel's next slot `seconds` away, as after a burst of posts to it."""
    keys = keys_for("chat.postMessage", {"channel": "U0ALICE"}, client.limits)
    await client.pacer.hold(keys, seconds)


async def test_a_slow_call_after_a_long_pace_wait_is_not_cut_off_and_posted_twice(
    slack: SlackDouble, client: PacedWebClient, store: SqliteStore
) -> None:
    dispatcher = await _dispatcher(store, client)
    await queued(store, "post", {"text": "Checkout is down"}, "INC-20261127-001")
    await _busy(client, 0.9)  # most of the handler's 1 s spent waiting for the slot
    answer = slack.hold_reply("chat.postMessage")
    delivering = asyncio.create_task(dispatcher.deliver_due())
    await slack.wait_for("chat.postMessage")  # Slack has made the post...
    # ...and answers only after the first second of the delivery (the old timeout) is over.
    await asyncio.sleep(0.3)
    answer.set()
    assert await delivering == 1
    assert await dispatcher.pending_count() == 0
    assert [m["text"] for m in slack.messages(_dm(slack))] == ["Checkout is down"]


async def test_a_wait_too_long_for_the_claim_hands_the_effect_back_before_its_call(
    slack: SlackDouble, client: PacedWebClient, store: SqliteStore
) -> None:
    dispatcher = await _dispatcher(store, client)
    effect_id = await queued(store, "post", {"text": "Checkout is down"}, "INC-20261127-001")
    await _busy(client, 5.0)  # past the 3 s a delivery may run
    assert await dispatcher.deliver_due() == 0
    assert slack.calls_to("chat.postMessage") == []  # no call started that could not finish
    async with store.transaction() as tx:
        row = await tx.fetchone(
            "SELECT attempts, available_at, failed_at, last_error FROM outbox WHERE id = ?",
            (effect_id,),
        )
    assert row is not None and row["failed_at"] is None
    assert row["attempts"] == 0  # waiting for a slot is no failed attempt
    assert float(row["available_at"]) > NOW.timestamp() + 4.5  # back when its slot is
    assert "Slack slot" in str(row["last_error"])


def _dm(slack: SlackDouble) -> str:
    [call] = [c for c in slack.calls_to("chat.postMessage") if c.ok]
    return str(call.response["channel"])


async def test_a_task_a_handler_started_waits_its_turn_after_the_handler_ended(
    slack: SlackDouble, client: PacedWebClient, store: SqliteStore
) -> None:
    # It inherits the delivery's budget, but not its timeout, which is over by then.
    notifier = SlackNotifier(client)
    started: list[asyncio.Task[object]] = []

    async def post(effect: Effect) -> None:
        started.append(asyncio.create_task(notifier.post("U0ALICE", effect.payload["text"])))

    dispatcher = OutboxDispatcher(store, FakeClock(NOW), claim_seconds=8.0, handler_timeout=1.0)
    dispatcher.register("post", post)
    await queued(store, "post", {"text": "Checkout is down"}, "INC-20261127-001")
    await _busy(client, 0.2)
    assert await dispatcher.deliver_due() == 1
    await started[0]
    assert [m["text"] for m in slack.messages(_dm(slack))] == ["Checkout is down"]
