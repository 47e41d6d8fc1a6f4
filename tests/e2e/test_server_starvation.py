"""Nothing can starve the server (issue 15.2): a real `chatops-bot run` process limited to
1,024 open files, with 1,100 requests that sent half their headers or half their body held
open against it, still answers /livez, /healthz and a signed declaration, and its log stays
small (the unbounded server held every such connection and wrote 46 MB of `Too many open
files` tracebacks)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.console.workspace import SlackDouble
from bot.slack.limits import SlackLimits
from bot.slack.requests import SlackRequestSender, slash_command_body
from tests.harness import BOT_TOKEN, PACE_SCALE, SIGNING_SECRET, openapi_spec
from tests.processes import BotProcess, bot_env, incident_ids
from tests.waiting import until

OPEN_FILES = 1024
HALF_SENT = 1100
ANSWER_WITHIN = 5.0  # seconds: only so that a starved server fails instead of hanging
LOG_CAP = 1_000_000  # bytes

POLICY = """\
announce_channel: C0INCIDENTS
war_room_severities: []
severities:
  P0: {ack_within: 3600, resolve_within: 36000, update_every: 3600}
  P1: {ack_within: 3600, resolve_within: 36000, update_every: 3600}
  P2: {ack_within: 3600, resolve_within: 36000, update_every: 3600}
  P3: {ack_within: 3600, resolve_within: 36000}
"""


@pytest.fixture
async def double() -> AsyncIterator[SlackDouble]:
    slack = SlackDouble(
        bot_token=BOT_TOKEN, openapi_spec=openapi_spec(), rate_limits=SlackLimits(scale=PACE_SCALE)
    )
    await slack.start()
    yield slack
    await slack.stop()


def _half_request(port: int, number: int) -> bytes:
    """Half the headers of a request, or all of them and half its body."""
    if number % 2:
        return f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slack-Sig".encode()
    return (
        f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 2000\r\n\r\n"
        + "text=half-a-body"
    ).encode()


async def _open_half_sent(port: int, number: int) -> asyncio.StreamWriter | None:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_half_request(port, number))
        await writer.drain()
        return writer
    except OSError:
        return None  # refused or reset at once: the server shed it, as it may


async def test_half_sent_requests_cannot_starve_a_bot_limited_to_1024_open_files(
    double: SlackDouble, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    database_url = f"sqlite:///{tmp_path}/chatops.db"
    bot = BotProcess("bot", bot_env(double, database_url, policy), tmp_path, open_files=OPEN_FILES)
    writers: list[asyncio.StreamWriter | None] = []
    try:
        await bot.ready()
        for start in range(0, HALF_SENT, 100):
            writers += await asyncio.gather(
                *(_open_half_sent(bot.port, n) for n in range(start, start + 100))
            )

        figures: dict[str, float] = {}
        timeout = aiohttp.ClientTimeout(total=ANSWER_WITHIN)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for path in ("/livez", "/healthz"):
                began = time.monotonic()
                async with session.get(bot.url + path) as response:
                    assert response.status == 200, bot.log()
                figures[path] = time.monotonic() - began
        body = slash_command_body(
            command="/incident",
            text="declare P1 Checkout down under a slow-request flood",
            user_id="U0ALICE",
            channel_id="C0GENERAL",
            response_url=double.new_response_url(channel="C0GENERAL", user_id="U0ALICE"),
        )
        began = time.monotonic()
        async with SlackRequestSender(
            bot.url + "/slack/events", SIGNING_SECRET, timeout=ANSWER_WITHIN
        ) as sender:
            answer = await sender.send(body)
        figures["declare"] = time.monotonic() - began
        assert answer.status == 200, bot.log()
        print("answered with", HALF_SENT, "half-sent requests open (s):", figures)

        async def declared() -> bool:
            titles = await incident_ids(database_url)
            return "Checkout down under a slow-request flood" in titles

        await until(declared, "the declaration to be recorded", timeout=10)
        assert bot.proc.poll() is None
    finally:
        open_writers = [writer for writer in writers if writer is not None]
        for writer in open_writers:
            writer.close()
        await asyncio.gather(
            *(writer.wait_closed() for writer in open_writers), return_exceptions=True
        )
        await bot.stop()
    size = bot.log_path.stat().st_size
    print("log size (bytes):", size)
    assert size < LOG_CAP, bot.log()
    text = bot.log_path.read_text()
    assert "shed the oldest stalled connection" in text  # the cap, not luck, made room
    assert "Traceback" not in text and " ERROR " not in text, text[-4000:]
