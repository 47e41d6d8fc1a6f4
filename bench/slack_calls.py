"""CPU of one Slack exchange in the bot's process, by layer (issue 19, item 1).

    .venv/bin/python bench/slack_calls.py [--calls 3000] [--concurrency 8] [--rounds 3] [--redis]
        [--uvloop]

A trivial Web API (an aiohttp app answering `{"ok": true, ...}` the way Slack does) runs in a
child process, so the CPU measured here (this process' `time.process_time`) is the caller's
alone. Each row sends `--calls` announcement-sized chat.postMessage calls (an incident card's
blocks), at most `--concurrency` in flight, on one keep-alive session, and prints the CPU per
call:

    aiohttp             session.post(json=...) and resp.json(): the floor
    slack_sdk           a bare AsyncWebClient on the same session
    PacedWebClient      the bot's client (pacing, metrics), LocalPacer
    SlackNotifier.post  the path the outbox takes (call_slack, MessageRef)
    + RedisPacer        the same with the pacer a deployment with Redis uses (--redis)
    respond             a response_url answer (SessionRespond, as a listener's `respond`)

Every channel is its own (as a burst of incidents is), so pacing never makes a call wait.
`--concurrency 1 --uvloop` measures the calls as the outbox makes them in `chatops-bot run`:
one at a time, on uvloop, each waking the loop for itself.
Figures only: see bench/README.md, "Hot paths (issue 19)".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.app import build_client  # noqa: E402
from bot.models import Incident, Severity, Status  # noqa: E402
from bot.slack import blocks, templates  # noqa: E402
from bot.slack.client import PacedWebClient, SessionRespond  # noqa: E402
from bot.slack.limits import SlackLimits  # noqa: E402
from bot.slack.notifier import SlackNotifier  # noqa: E402
from bot.slack.pace import LocalPacer, Pacer, RedisPacer  # noqa: E402
from tests.servers import RedisServer, free_port  # noqa: E402

TOKEN = "xoxb-bench-0000000000-0000000000000-abcdefabcdefabcdefabcdef"


def _serve(port: int) -> None:
    """The Web API and response_urls, as thin as a server gets (in its own process)."""
    counter = iter(range(1, 10**9))

    async def api(request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            body = await request.json()
        else:
            body = {**request.query, **(await request.post())}
        if request.match_info["method"] == "conversations.open":
            return web.json_response({"ok": True, "channel": {"id": "D" + str(body["users"])}})
        ts = f"1700000000.{next(counter):06d}"
        return web.json_response({"ok": True, "channel": body.get("channel", "C0"), "ts": ts})

    async def respond(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/api/{method}", api)
    app.router.add_post("/respond/{n}", respond)
    web.run_app(app, host="127.0.0.1", port=port, print=None, handle_signals=True)


@contextlib.contextmanager
def trivial_api() -> Iterator[str]:
    """`_serve` in a child process, until it answers; yields its base URL."""
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(port,), daemon=True)
    server.start()
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.join()


def _incident(n: int) -> Incident:
    now = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    return Incident(
        id=f"INC-20261205-{n:03d}",
        title="Checkout latency above 2 s for EU customers",
        severity=Severity.P2,
        status=Status.INVESTIGATING,
        declared_by="U0ALICE",
        declared_at=now,
        updated_at=now,
        roles={"commander": "U0ALICE"},
    )


async def _run(calls: int, concurrency: int, one: Callable[[int], Awaitable[Any]]) -> float:
    """CPU seconds per call of `calls` calls of `one(i)`, `concurrency` in flight."""
    for i in range(min(200, calls)):  # warm: connections open, caches filled
        await one(i)
    queue = iter(range(calls))

    async def worker() -> None:
        for i in queue:
            await one(i)

    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - started) / calls


async def measure(args: argparse.Namespace, base: str, redis_url: str | None) -> None:
    card = blocks.incident_card(_incident(1))
    text = templates.announcement_text(_incident(1))
    rows: dict[str, Callable[[int], Awaitable[Any]]] = {}
    session = aiohttp.ClientSession()

    async def bare(i: int) -> Any:
        payload = {"channel": f"C{i:08d}", "text": text, "blocks": card}
        async with session.post(
            f"{base}/api/chat.postMessage",
            json=payload,
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as resp:
            return await resp.json()

    rows["aiohttp post + json"] = bare
    sdk = AsyncWebClient(token=TOKEN, base_url=f"{base}/api/", session=session)

    async def sdk_call(i: int) -> Any:
        return await sdk.chat_postMessage(channel=f"C{i:08d}", text=text, blocks=card)

    rows["slack_sdk AsyncWebClient"] = sdk_call
    pacers: list[tuple[str, Pacer]] = [("LocalPacer", LocalPacer())]
    if redis_url:
        pacers.append(("RedisPacer", RedisPacer(redis_url)))
    clients = []
    for name, pacer in pacers:
        # Slack's clock 10,000 times faster: no call ever waits for its slot.
        client = build_client(TOKEN, f"{base}/api/", pacer=pacer, limits=SlackLimits(scale=1e4))
        assert isinstance(client, PacedWebClient)
        client.keep_connections()
        clients.append(client)
        rows.update(_client_rows(name, client, text, card))
        if name == "LocalPacer":
            assert client.session is not None
            rows["respond (response_url)"] = _answer(client.session, base)

    results: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(args.rounds):  # rows alternated, so a busy spell spreads over all of them
        for name, one in rows.items():
            results[name].append(await _run(args.calls, args.concurrency, one))
    for client in clients:
        await client.close_connections()
    for _, pacer in pacers:
        if isinstance(pacer, RedisPacer):
            await pacer.close()
    await session.close()

    floor = statistics.median(results["aiohttp post + json"])
    print(f"{'per call, CPU of this process':<40} {'us (median)':>12} {'x aiohttp':>10}")
    for name, seconds in results.items():
        median = statistics.median(seconds)
        print(f"{name:<40} {median * 1e6:12.0f} {median / floor:10.2f}")


def _client_rows(
    name: str, client: PacedWebClient, text: str, card: list[dict[str, Any]]
) -> dict[str, Callable[[int], Awaitable[Any]]]:
    notifier = SlackNotifier(client)

    async def paced(i: int) -> Any:
        return await client.chat_postMessage(channel=f"C{i:08d}", text=text, blocks=card)

    async def post(i: int) -> Any:
        return await notifier.post(f"C{i:08d}", text, card)

    async def dm(i: int) -> Any:  # 50 people, each written to many times (pages, reminders)
        return await notifier.direct_message(f"U{i % 50:08d}", text)

    return {
        f"PacedWebClient ({name})": paced,
        f"SlackNotifier.post ({name})": post,
        f"direct_message ({name})": dm,
    }


def _answer(session: aiohttp.ClientSession, base: str) -> Callable[[int], Awaitable[Any]]:
    async def answer(i: int) -> Any:
        respond = SessionRespond(response_url=f"{base}/respond/{i}", session=session)
        return await respond(text="Declared INC-20261205-001", response_type="ephemeral")

    return answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis", action="store_true", help="also measure with a RedisPacer")
    parser.add_argument("--uvloop", action="store_true", help="on uvloop, as `chatops-bot run`")
    args = parser.parse_args()
    with trivial_api() as base:
        with RedisServer() if args.redis else contextlib.nullcontext() as redis:
            redis_url = redis.url if redis is not None else None
            if args.uvloop:
                import uvloop

                uvloop.run(measure(args, base, redis_url))
            else:
                asyncio.run(measure(args, base, redis_url))


if __name__ == "__main__":
    main()
