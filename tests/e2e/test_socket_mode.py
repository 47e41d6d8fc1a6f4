"""Socket Mode end to end: the bot dials the double over a WebSocket, as it dials Slack.

With SLACK_APP_TOKEN set the bot calls apps.connections.open on SLACK_API_URL, connects to the
URL it is given, and receives envelopes instead of HTTP requests; each is acked by its
envelope_id. Slack asks clients to reconnect from time to time (a `disconnect` frame) and
redelivers envelopes it thinks were lost: neither may lose or duplicate an incident.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.console.workspace import SlackDouble
from bot.errors import ConfigError
from bot.runtime import create_bot
from bot.settings import Settings
from bot.slack.requests import new_trigger_id, slash_command_payload
from bot.store import create_store
from tests.e2e.conftest import HarnessFactory
from tests.harness import BOT_TOKEN, SIGNING_SECRET, BotHarness, default_policy, openapi_spec
from tests.waiting import until

APP_TOKEN = "xapp-1-A0TEST-1-socketmodetest"


async def _socket_harness(make_harness: HarnessFactory) -> BotHarness:
    double = SlackDouble(bot_token=BOT_TOKEN, app_token=APP_TOKEN, openapi_spec=openapi_spec())
    harness = await make_harness("sqlite", double=double, app_token=APP_TOKEN)
    await double.wait_connected(1)
    return harness


def _declare(harness: BotHarness, text: str, *, trigger_id: str | None = None) -> dict[str, Any]:
    response_url = harness.double.new_response_url(channel="C0GENERAL", user_id="U0ALICE")
    return slash_command_payload(
        text=text,
        user_id="U0ALICE",
        channel_id="C0GENERAL",
        response_url=response_url,
        trigger_id=trigger_id,
    )


async def _incident_titles(harness: BotHarness) -> list[str]:
    return sorted(i.title for i in await harness.services.incidents.list(open_only=False))


def _announcements(harness: BotHarness) -> list[str]:
    """Texts posted to the announcement channel (war rooms and pages go elsewhere)."""
    channel = harness.services.policy.announce_channel
    return [
        str(c.params["text"])
        for c in harness.double.calls_to("chat.postMessage")
        if c.ok and c.params.get("channel") == channel
    ]


async def _announced(harness: BotHarness, count: int) -> list[str]:
    await harness.settle()
    for _ in range(100):
        if len(_announcements(harness)) >= count:
            break
        await asyncio.sleep(0.05)
    return _announcements(harness)


async def _audited(harness: BotHarness, action: str) -> bool:
    return any([e async for e in harness.services.audit.entries() if e.action == action])


async def _declare_entries(harness: BotHarness) -> list[tuple[str, str, str]]:
    entries = [e async for e in harness.services.audit.entries()]
    return [(e.action, e.outcome, e.actor) for e in entries if e.action == "incident.declare"]


async def test_connects_with_the_app_token_on_the_configured_api_url(
    make_harness: HarnessFactory,
) -> None:
    harness = await _socket_harness(make_harness)
    [opened] = harness.double.calls_to("apps.connections.open")
    assert opened.ok, opened.response  # the double only accepts the app token, in the header
    assert harness.double.connection_count == 1


async def test_slash_command_envelope_is_acked_stored_and_announced(
    make_harness: HarnessFactory,
) -> None:
    harness = await _socket_harness(make_harness)

    envelope_id = await harness.double.send_envelope(
        "slash_commands", _declare(harness, "declare P1 Checkout down")
    )
    ack = await harness.double.wait_ack(envelope_id)
    assert ack["envelope_id"] == envelope_id
    assert set(ack) <= {"envelope_id", "payload"}  # an ack, nothing else

    [reply] = await harness.replies()
    assert reply["response_type"] == "ephemeral" and "Declared *INC-" in reply["text"]
    assert await _incident_titles(harness) == ["Checkout down"]
    [announcement] = await _announced(harness, 1)
    assert "Checkout down" in announcement
    assert await _declare_entries(harness) == [("incident.declare", "ok", "U0ALICE")]


async def test_reconnects_after_disconnect_and_keeps_working(
    make_harness: HarnessFactory,
) -> None:
    harness = await _socket_harness(make_harness)
    first = await harness.double.send_envelope(
        "slash_commands", _declare(harness, "declare P1 Checkout down")
    )
    await harness.double.wait_ack(first)
    await harness.replies()

    await harness.double.disconnect_clients()
    # The bot reconnects by itself: a fresh apps.connections.open, a second WebSocket.
    await harness.double.wait_connected(2, timeout=15)
    assert len(harness.double.calls_to("apps.connections.open")) >= 2

    second = await harness.double.send_envelope(
        "slash_commands", _declare(harness, "declare P2 Search is slow")
    )
    assert (await harness.double.wait_ack(second, timeout=10))["envelope_id"] == second
    await harness.replies()
    assert await _incident_titles(harness) == ["Checkout down", "Search is slow"]
    announcements = await _announced(harness, 2)
    assert any("Search is slow" in text for text in announcements)


async def test_redelivered_envelope_creates_nothing_new(make_harness: HarnessFactory) -> None:
    harness = await _socket_harness(make_harness)
    payload = _declare(harness, "declare P1 Checkout down", trigger_id=new_trigger_id())

    first = await harness.double.send_envelope("slash_commands", payload)
    await harness.double.wait_ack(first)
    await harness.replies()
    await _announced(harness, 1)
    await harness.double.wait_for("pins.add")  # the war room's set-up is done
    await harness.settle()
    calls_before = len(harness.double.calls)
    entries_before = [e.seq async for e in harness.services.audit.entries()]

    # Slack lost our ack (as far as it knows) and sends the same payload again.
    again = await harness.double.send_envelope("slash_commands", dict(payload))
    assert (await harness.double.wait_ack(again))["envelope_id"] == again
    # A later envelope, answered and audited, then an idle outbox: the redelivery had its
    # chance to do (wrongly) anything.
    marker = await harness.double.send_envelope("slash_commands", _declare(harness, "list"))
    await harness.double.wait_ack(marker)
    [listed] = await harness.replies()
    assert "Open incidents (1)" in listed["text"]
    await until(lambda: _audited(harness, "incident.list"))
    await harness.settle()
    assert await _incident_titles(harness) == ["Checkout down"]
    assert len(_announcements(harness)) == 1
    assert await _declare_entries(harness) == [("incident.declare", "ok", "U0ALICE")]
    entries = [e.seq async for e in harness.services.audit.entries() if e.action != "incident.list"]
    assert entries == entries_before
    # Nothing was posted, created or paged for the redelivery.
    new_calls = [c.method for c in harness.double.calls[calls_before:]]
    assert not {"chat.postMessage", "conversations.create"} & set(new_calls), new_calls


async def test_an_app_token_slack_refuses_stops_start_up_naming_it(
    tmp_path: Path, migrated_sqlite: Callable[[Path], str]
) -> None:
    """Slack answering invalid_auth to apps.connections.open was retried for ever: the pod
    served /livez and /readyz (the bot token is fine) and never received an event."""
    double = SlackDouble(bot_token=BOT_TOKEN, app_token=APP_TOKEN, openapi_spec=openapi_spec())
    await double.start()
    settings = Settings(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=double.api_url,
        SLACK_APP_TOKEN="xapp-1-A0TEST-1-revoked",
        DATABASE_URL=migrated_sqlite(tmp_path / "chatops.db"),
    )
    bot = create_bot(settings, policy=default_policy())
    try:
        with pytest.raises(ConfigError) as caught:
            await asyncio.wait_for(bot.start("127.0.0.1", 0), timeout=10)
        assert str(caught.value).startswith("SLACK_APP_TOKEN was refused by Slack (invalid_auth)")
        assert len(double.calls_to("apps.connections.open")) == 1
    finally:
        await bot.stop()
        await double.stop()


async def test_every_declaration_acked_over_the_socket_before_a_stop_is_declared(
    make_harness: HarnessFactory,
) -> None:
    """As over HTTP (test_stop_mid_burst): a stop right after the envelopes' acks closed the
    store under the listeners' post-ack work, and the acked declarations were lost."""
    harness = await _socket_harness(make_harness)
    envelopes = [
        await harness.double.send_envelope(
            "slash_commands", _declare(harness, f"declare P3 Disk full on db-{n}")
        )
        for n in range(8)
    ]
    for envelope_id in envelopes:
        await harness.double.wait_ack(envelope_id)
    await harness.bot.stop()  # at once, as SIGTERM does

    store = create_store(harness.bot.settings.DATABASE_URL)
    await store.open()
    try:
        async with store.transaction() as tx:
            row = await tx.fetchone("SELECT COUNT(*) AS n FROM incidents")
    finally:
        await store.close()
    assert row is not None and row["n"] == len(envelopes)
