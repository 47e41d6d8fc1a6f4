"""Ack latency of `/incident declare`: the bot against a bare Bolt app, same process, same run.

    .venv/bin/python bench/ack_latency.py [--requests 50] [--rounds 5] [--database-url URL]

Both apps sit behind the same aiohttp adapter (to_bolt_request / to_aiohttp_response), check
the same signing secret and point their Web API client at the same SlackDouble; the bare app's
`/incident` listener only acks. Each round fires N concurrent, correctly signed
`/incident declare P2 ...` requests at one app and records each request's HTTP round trip
(time to the 200 ack). Rounds alternate (bot, bare, bare, bot, ...) so neither gets a warmer
machine, and the next round starts only once the bot's announcements of the previous round
are all posted. Figures only, no assertions: see bench/README.md for how to read them.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.console.workspace import RecordedCall, RecordedResponse, SlackDouble
from bot.policy import load_policy
from bot.runtime import create_bot
from bot.settings import Settings
from bot.slack.requests import SlackRequestSender, slash_command_body

SIGNING_SECRET = "bench-signing-secret-0123456789ab"
BOT_TOKEN = "xoxb-bench"
CHANNEL = "C0BENCH"
USER = "U0BENCH"


@dataclass
class Target:
    """One app under test: where to send, and what it measured."""

    name: str
    url: str
    latencies_ms: list[float] = field(default_factory=list)
    round_p99_ms: list[float] = field(default_factory=list)


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest sample with `fraction` of them at or below it."""
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil without floats creeping in
    return ordered[int(rank) - 1]


async def start_bare_app(api_url: str) -> tuple[web.AppRunner, str]:
    """A Bolt app that only acks `/incident`, served exactly as bot.server serves the bot."""
    app = AsyncApp(
        client=AsyncWebClient(token=BOT_TOKEN, base_url=api_url, timeout=10),
        signing_secret=SIGNING_SECRET,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )

    @app.command("/incident")
    async def incident(ack: Callable[[], Awaitable[None]]) -> None:
        await ack()

    async def slack_events(request: web.Request) -> web.Response:
        bolt_request = await to_bolt_request(request)
        bolt_response = await app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    web_app = web.Application()
    web_app.router.add_post("/slack/events", slack_events)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/slack/events"


async def burst(sender: SlackRequestSender, double: SlackDouble, texts: list[str]) -> list[float]:
    """Send every request at once; return each one's round trip in milliseconds."""
    bodies = [
        slash_command_body(
            text=text,
            user_id=USER,
            channel_id=CHANNEL,
            response_url=double.new_response_url(channel=CHANNEL, user_id=USER),
        )
        for text in texts
    ]

    async def one(body: Any) -> float:
        started = time.perf_counter()
        response = await sender.send(body)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {response.body!r}")
        return elapsed

    return list(await asyncio.gather(*(one(body) for body in bodies)))


class AnnouncementCounter:
    """Counts announcements as the double records them (the double's on_event hook)."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.posted = 0
        self._changed = asyncio.Event()

    async def __call__(self, item: RecordedCall | RecordedResponse) -> None:
        if (
            isinstance(item, RecordedCall)
            and item.method == "chat.postMessage"
            and item.ok
            and item.params.get("channel") == self.channel
        ):
            self.posted += 1
            self._changed.set()

    async def wait_for(self, count: int, within: float) -> None:
        """Until `count` announcements have been posted in total."""
        async with asyncio.timeout(within):
            while self.posted < count:
                self._changed.clear()
                await self._changed.wait()


async def run(requests: int, rounds: int, database_url: str | None) -> None:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("slack_bolt").setLevel(logging.ERROR)  # "token will be unused" noise
    async with AsyncExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="ack-bench-"))
        database_url = database_url or f"sqlite:///{tmp}/bench.db"
        policy = load_policy(None)
        counter = AnnouncementCounter(policy.announce_channel)
        double = SlackDouble(bot_token=BOT_TOKEN, on_event=counter)
        await double.start()
        stack.push_async_callback(double.stop)
        double.add_channel(CHANNEL, "bench")

        settings = Settings(
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=double.api_url,
            SLACK_APP_TOKEN=None,
            DATABASE_URL=database_url,
            REDIS_URL=None,
        )
        bot = create_bot(settings, policy=policy)
        await bot.start("127.0.0.1", 0)
        stack.push_async_callback(bot.stop)
        bare_runner, bare_url = await start_bare_app(double.api_url)
        stack.push_async_callback(bare_runner.cleanup)

        targets = {
            "bot": Target("bot", f"http://127.0.0.1:{bot.port}/slack/events"),
            "bare": Target("bare", bare_url),
        }
        senders: dict[str, SlackRequestSender] = {}
        for name, target in targets.items():
            connector = aiohttp.TCPConnector(limit=0)  # no client-side queueing
            session = aiohttp.ClientSession(connector=connector)
            stack.push_async_callback(session.close)
            senders[name] = SlackRequestSender(target.url, SIGNING_SECRET, session=session)

        announced = 0
        settle_s: list[float] = []

        async def fire(name: str, label: str, record: bool) -> None:
            nonlocal announced
            texts = [f"declare P2 Bench {label} request {n}" for n in range(requests)]
            # Same starting line for both: no garbage left from the last round to collect.
            gc.collect()
            started = time.perf_counter()
            latencies = await burst(senders[name], double, texts)
            if name == "bot":
                announced += requests
                await counter.wait_for(announced, within=120)
                if record:
                    settle_s.append(time.perf_counter() - started)
            if record:
                targets[name].latencies_ms += latencies
                targets[name].round_p99_ms.append(percentile(latencies, 0.99))

        # Warm-up: first-request costs (auth.test, connection pools, SQLite pages) for both.
        for n in range(3):
            for name in ("bot", "bare"):
                await fire(name, f"warm-up {n}", record=False)
        gc.freeze()  # what the warm-up built lives on; keep it out of every later collection

        print(
            f"ack latency: {rounds} rounds x {requests} concurrent signed /incident declare"
            f" (store: {database_url.split('://', 1)[0]})"
        )
        for round_no in range(rounds):
            order = ("bot", "bare") if round_no % 2 == 0 else ("bare", "bot")
            for name in order:
                await fire(name, f"round {round_no}", record=True)
            print(
                f"  round {round_no + 1}: p99 bot {targets['bot'].round_p99_ms[-1]:6.1f} ms,"
                f" bare {targets['bare'].round_p99_ms[-1]:6.1f} ms;"
                f" announcements all posted after {settle_s[-1]:.2f} s"
            )

        bot_t, bare_t = targets["bot"], targets["bare"]
        rows = []
        for target in (bot_t, bare_t):
            samples = target.latencies_ms
            rows.append(
                (
                    target.name,
                    statistics.median(samples),
                    percentile(samples, 0.99),
                    max(samples),
                )
            )
        print()
        count = len(bot_t.latencies_ms)
        print(f"{'':10}{'median':>10}{'p99':>10}{'max':>10}   ({count} requests each)")
        for name, median, p99, worst in rows:
            label = "bot" if name == "bot" else "bare app"
            print(f"{label:10}{median:8.1f}ms{p99:8.1f}ms{worst:8.1f}ms")
        median_ratio = rows[0][1] / rows[1][1]
        p99_ratio = rows[0][2] / rows[1][2]
        print(f"{'bot/bare':10}{median_ratio:9.2f}x{p99_ratio:9.2f}x")
        goal = "meets" if p99_ratio <= 1.5 else "misses"
        print(f"p99 ratio {p99_ratio:.2f} {goal} the goal of at most 1.5")
        typical = statistics.median(bot_t.round_p99_ms) / statistics.median(bare_t.round_p99_ms)
        print(
            f"median of the per-round p99s: bot {statistics.median(bot_t.round_p99_ms):.1f} ms,"
            f" bare {statistics.median(bare_t.round_p99_ms):.1f} ms (ratio {typical:.2f};"
            " less sensitive to one noisy round)"
        )
        print(
            f"announcements: all {requests} posted {statistics.median(settle_s):.2f} s after the"
            f" burst began (median of {len(settle_s)} rounds; worst {max(settle_s):.2f} s)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50, help="concurrent requests per round")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per app")
    parser.add_argument(
        "--database-url", help="the bot's store (default: SQLite in a temporary directory)"
    )
    args = parser.parse_args(argv)
    asyncio.run(run(args.requests, args.rounds, args.database_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
