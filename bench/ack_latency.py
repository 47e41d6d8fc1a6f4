"""Ack latency of `/incident declare`: the bot against a bare Bolt app, same run.

    .venv/bin/python bench/ack_latency.py [--requests 50] [--rounds 5] [--database-url URL]
        [--replicas N [--redis]] [--pace-scale 100]

In-process (default): both apps run in this process. With `--replicas N`, each is N processes
behind a round-robin front (the bot: `chatops-bot run` on PostgreSQL, a throwaway server
unless `--database-url`, and with `--redis` a throwaway Redis; the bare app: bench/cluster.py
processes), as a Deployment runs them. Both apps sit behind the same aiohttp adapter
(to_bolt_request / to_aiohttp_response), check the same signing secret and point their Web
API client at the same SlackDouble; the bare app's
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
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cluster import (  # noqa: E402
    BOT_TOKEN,
    PACE_SCALE,
    SIGNING_SECRET,
    AnnouncementCounter,
    cluster,
    serve,
    servers,
    start_bare_app,
)
from bot.console.workspace import SlackDouble  # noqa: E402
from bot.policy import load_policy  # noqa: E402
from bot.runtime import create_bot  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.slack.limits import SlackLimits  # noqa: E402
from bot.slack.requests import SlackRequestSender, slash_command_body  # noqa: E402

GOAL_RATIO = 1.2
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


async def run(args: argparse.Namespace) -> None:
    requests, rounds = args.requests, args.rounds
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("slack_bolt").setLevel(logging.ERROR)  # "token will be unused" noise
    async with AsyncExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="ack-bench-"))
        policy = load_policy(None)
        counter = AnnouncementCounter(policy.announce_channel)
        # Slack's limits, enforced at the pace the bot keeps: a 429 would show as a stall.
        double = SlackDouble(
            bot_token=BOT_TOKEN, on_event=counter, rate_limits=SlackLimits(scale=args.pace_scale)
        )
        await double.start()
        stack.push_async_callback(double.stop)
        double.add_channel(CHANNEL, "bench")

        if args.replicas:
            database, redis_url, _ = stack.enter_context(servers(args.database_url, args.redis))
            database_url = database("ack")
            bots = await stack.enter_async_context(
                cluster(
                    "bot",
                    args.replicas,
                    double,
                    database_url=database_url,
                    redis_url=redis_url,
                    pace_scale=args.pace_scale,
                )
            )
            bares = await stack.enter_async_context(cluster("bare", args.replicas, double))
            bot_url, bare_url = bots.url, bares.url
            setup = f"{args.replicas} processes each behind a round-robin front"
        else:
            database_url = args.database_url or f"sqlite:///{tmp}/bench.db"
            redis_url = None
            if args.redis:
                _, redis_url, _ = stack.enter_context(servers(database_url, True))
            settings = Settings(
                SLACK_BOT_TOKEN=BOT_TOKEN,
                SLACK_SIGNING_SECRET=SIGNING_SECRET,
                SLACK_API_URL=double.api_url,
                SLACK_APP_TOKEN=None,
                DATABASE_URL=database_url,
                REDIS_URL=redis_url,
                SLACK_PACE_SCALE=args.pace_scale,
            )
            bot = create_bot(settings, policy=policy)
            await bot.start("127.0.0.1", 0)
            stack.push_async_callback(bot.stop)
            bare_runner, bare_port = await serve(start_bare_app(double.api_url))
            stack.push_async_callback(bare_runner.cleanup)
            bot_url = f"http://127.0.0.1:{bot.port}/slack/events"
            bare_url = f"http://127.0.0.1:{bare_port}/slack/events"
            setup = "both in this process"

        targets = {"bot": Target("bot", bot_url), "bare": Target("bare", bare_url)}
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
            f" (store: {database_url.split('://', 1)[0]}, Redis: {'yes' if redis_url else 'no'};"
            f" {setup}; Slack's pace x{args.pace_scale:g})"
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
        goal = "meets" if p99_ratio <= GOAL_RATIO else "misses"
        print(f"p99 ratio {p99_ratio:.2f} {goal} the goal of at most {GOAL_RATIO}")
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
        "--database-url",
        help="the bot's store (default: SQLite in a temporary directory; with --replicas,"
        " a throwaway PostgreSQL)",
    )
    parser.add_argument(
        "--replicas", type=int, default=0, help="run each app as N processes behind a front"
    )
    parser.add_argument("--redis", action="store_true", help="give the bot a (throwaway) Redis")
    parser.add_argument(
        "--pace-scale",
        type=float,
        default=PACE_SCALE,
        help="Slack's clock this many times faster, for the double and the bot alike",
    )
    args = parser.parse_args(argv)
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
