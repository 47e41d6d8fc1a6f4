"""What one HTTP client may take of the server (issue 15.2): headers and body within their
deadlines, headers and body within their sizes, connections within the cap; and each
refusal one WARNING line, never an ERROR with a traceback."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.serving import connection_cap
from tests.e2e.conftest import HarnessFactory
from tests.harness import BotHarness
from tests.waiting import until

# pytest-asyncio deprecates overriding event_loop_policy for a hook that applies to a whole
# directory; test_each_test_runs_on_its_loop fails should the override stop taking effect.
pytestmark = pytest.mark.filterwarnings("ignore:Overriding the .event_loop_policy. fixture")


@pytest.fixture(scope="module", params=["asyncio", "uvloop"])
def event_loop_policy(request: pytest.FixtureRequest) -> asyncio.AbstractEventLoopPolicy:
    """Each test on asyncio's loop and on uvloop's, which `chatops-bot run` serves on: the
    guard reads the connections' transports, and uvloop's are its own."""
    if request.param == "uvloop":
        import uvloop

        return uvloop.EventLoopPolicy()
    return asyncio.DefaultEventLoopPolicy()


async def test_each_test_runs_on_its_loop(
    event_loop_policy: asyncio.AbstractEventLoopPolicy,
) -> None:
    expected = type(event_loop_policy).__module__.split(".")[0]  # uvloop, or asyncio
    assert type(asyncio.get_running_loop()).__module__.split(".")[0] == expected


FAST = {"HTTP_HEADER_SECONDS": 0.5, "HTTP_BODY_SECONDS": 0.5}
HANG = 10.0  # seconds: only so that a server that never closes fails instead of hanging


def _problems(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def _connect(harness: BotHarness) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", harness.bot.port)


def _head(harness: BotHarness, *lines: str) -> bytes:
    head = ["POST /slack/events HTTP/1.1", f"Host: 127.0.0.1:{harness.bot.port}", *lines]
    return ("\r\n".join(head) + "\r\n\r\n").encode()


async def test_a_request_that_never_finishes_its_headers_is_closed(
    make_harness: HarnessFactory, caplog: pytest.LogCaptureFixture
) -> None:
    harness = await make_harness(**FAST)
    reader, writer = await _connect(harness)
    with caplog.at_level(logging.WARNING):
        writer.write(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nX-Slack-Sig")
        try:
            assert await asyncio.wait_for(reader.read(), HANG) == b""  # closed, nothing said
        finally:
            writer.close()
    warnings = [r.getMessage() for r in caplog.records if r.name == "bot.serving"]
    assert warnings == ["closed a connection: its request headers did not arrive within 0.5 s"]
    assert _problems(caplog) == []


async def test_a_connection_that_never_sends_is_closed_once_idle_too_long(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness(HTTP_IDLE_SECONDS=0.3)
    reader, writer = await _connect(harness)
    try:
        assert await asyncio.wait_for(reader.read(), HANG) == b""
    finally:
        writer.close()


async def _livez(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """GET /livez on an open connection (kept alive); the status line."""
    writer.write(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HANG)
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    await reader.readexactly(length)
    return head.split(b"\r\n")[0]


async def test_a_kept_alive_connection_outlives_the_header_deadline(
    make_harness: HarnessFactory,
) -> None:
    """The header clock starts at a request's first byte: an idle kept-alive connection
    (a load balancer's) is closed only after HTTP_IDLE_SECONDS."""
    harness = await make_harness(HTTP_HEADER_SECONDS=0.2)
    reader, writer = await _connect(harness)
    assert await _livez(reader, writer) == b"HTTP/1.1 200 OK"
    # Another connection that starts a request and stalls is closed: the header deadline
    # has come and gone while the first connection sat idle.
    slow_reader, slow_writer = await _connect(harness)
    slow_writer.write(b"GET /livez HTTP/1.1\r\nHo")
    assert await asyncio.wait_for(slow_reader.read(), HANG) == b""
    slow_writer.close()
    assert await _livez(reader, writer) == b"HTTP/1.1 200 OK"
    writer.close()


async def test_a_body_that_never_arrives_gets_408_and_one_warning(
    make_harness: HarnessFactory, caplog: pytest.LogCaptureFixture
) -> None:
    harness = await make_harness(**FAST)
    reader, writer = await _connect(harness)
    with caplog.at_level(logging.WARNING):
        writer.write(_head(harness, "Content-Length: 100") + b"text=half")
        try:
            answer = await asyncio.wait_for(reader.read(), HANG)
        finally:
            writer.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    warnings = [r.getMessage() for r in caplog.records if r.name == "bot.serving"]
    assert warnings == ["closed a request to /slack/events: its body did not arrive within 0.5 s"]
    assert _problems(caplog) == []
    assert [c.method for c in harness.double.calls] == []


async def test_a_client_hanging_up_mid_body_is_one_warning(
    harness: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    assert harness.bot.server is not None
    guard = harness.bot.server.guard
    with caplog.at_level(logging.WARNING):
        _, writer = await _connect(harness)
        writer.write(_head(harness, "Content-Length: 1000") + b"text=half")
        await until(lambda: guard.reading_bodies == 1, "the server to wait for the body")
        writer.close()
        await until(lambda: guard.reading_bodies == 0, "the server to see the hang-up")
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].levelno == logging.WARNING and lines[0].exc_info is None
    assert _problems(caplog) == []
    # The server still answers.
    status, _ = await harness.sender.send(harness.slash("help"))
    assert status == 200


async def test_a_header_over_the_limit_gets_400_and_one_warning(
    harness: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        reader, writer = await _connect(harness)
        writer.write(_head(harness, "X-Padding: " + "a" * 9000, "Content-Length: 0"))
        try:
            answer = await asyncio.wait_for(reader.read(), HANG)
        finally:
            writer.close()
    assert answer.startswith(b"HTTP/1.0 400 "), answer
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].levelno == logging.WARNING and lines[0].exc_info is None
    message = lines[0].getMessage()
    assert message.startswith("refused a request from 127.0.0.1: Got more than 8190 bytes")
    assert "\n" not in message and "aaaa" not in message  # the header's bytes stay out


async def test_too_many_headers_and_too_big_a_body_are_refused(
    make_harness: HarnessFactory, caplog: pytest.LogCaptureFixture
) -> None:
    harness = await make_harness(HTTP_MAX_BODY_BYTES=64 * 1024)
    with caplog.at_level(logging.WARNING):
        reader, writer = await _connect(harness)
        many = [f"X-Header-{n}: {n}" for n in range(65)]
        writer.write(_head(harness, *many, "Content-Length: 0"))
        answer = await asyncio.wait_for(reader.read(), HANG)
        writer.close()
        assert answer.startswith(b"HTTP/1.0 400 "), answer

        big = b"text=" + b"x" * (64 * 1024)
        response = await harness.sender.send(big)
        assert response.status == 413
        async with aiohttp.ClientSession() as session:  # chunked: no length said up front

            async def chunks() -> AsyncIterator[bytes]:
                for _ in range(20):
                    yield b"x" * 4096

            async with session.post(harness.app_url, data=chunks()) as chunked:
                assert chunked.status == 413
    assert _problems(caplog) == []
    assert [c.method for c in harness.double.calls] == []


async def test_at_the_cap_the_oldest_stalled_connection_makes_room(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness(HTTP_MAX_CONNECTIONS=8)
    assert harness.bot.server is not None
    guard = harness.bot.server.guard
    stalled = [await _connect(harness) for _ in range(8)]
    for _, writer in stalled:
        writer.write(b"POST /slack/events HTTP/1.1\r\nHost: x\r\n")
        await writer.drain()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HANG)) as session:
        for _ in range(3):
            async with session.get(f"http://127.0.0.1:{harness.bot.port}/livez") as answer:
                assert answer.status == 200
    assert guard.shed_count >= 1
    # The first stalled connection was shed first: the server closed it.
    first_reader = stalled[0][0]
    assert await asyncio.wait_for(first_reader.read(), HANG) == b""
    assert guard.open_connections <= 8
    for _, writer in stalled:
        writer.close()


def test_the_connection_cap_leaves_room_for_the_process_own_files() -> None:
    assert connection_cap(1000, 1024) == 768
    assert connection_cap(1000, 1_048_576) == 1000
    assert connection_cap(1000, 256) == 128


def test_start_up_raises_the_open_files_limit_to_the_hard_limit() -> None:
    code = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (512, 2048))\n"
        "from bot.serving import raise_open_files_limit\n"
        "print(raise_open_files_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.split() == ["2048", "2048"]
