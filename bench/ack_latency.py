"""Ack latency of `/incident declare`: the bot against a bare Bolt app, same run.

    .venv/bin/python bench/ack_latency.py [--requests 50] [--rounds 15] [--database-url URL]
        [--replicas N [--redis]] [--pace-scale 100]

In-process (default): both apps run in this process. With `--replicas N`, each is N processes
(the bot: `chatops-bot run` on PostgreSQL, a throwaway server unless `--database-url`, and with
`--redis` a throwaway Redis; the bare app: bench/cluster.py processes), as a Deployment runs
them, and the client sends request n to process n modulo N (round-robin, as a front would,
without the front's extra hop). Both apps sit behind the same aiohttp adapter
(to_bolt_request / to_aiohttp_response), check the same signing secret and point their Web
API client at the same SlackDouble; the bare app's `/incident` listener only acks.

Each round fires N concurrent, correctly signed `/incident declare P2 ...` requests at one app
from a client process of its own (bench/ack_client.py: its clock does not wait behind the
Slack double's work in this process) and records each request's HTTP round trip (time to the
200 ack). Rounds alternate (bot, bare, bare, bot, ...) so neither gets a warmer machine, and
the next round starts only once the bot's Slack calls for the last one are all made.
The headline is the median, over the rounds, of (bot round p99 / bare round p99) for the two
rounds run back to back, with its interquartile range. Figures only, no assertions: see
bench/README.md for how to read them.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import re
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cluster import (  # noqa: E402
    BOT_TOKEN,
    PACE_SCALE,
    SIGNING_SECRET,
    cluster,
    serve,
    servers,
    start_bare_app,
    start_in_process,
)
from bot.console.workspace import RecordedCall, RecordedResponse, SlackDouble  # noqa: E402
from bot.policy import load_policy  # noqa: E402
from bot.slack.limits import SlackLimits  # noqa: E402
from bot.slack.requests import slash_command_body  # noqa: E402

GOAL_RATIO = 1.1
QUIET_S = 0.2
CLIENT = Path(__file__).with_name("ack_client.py")
CHANNEL = "C0BENCH"
USER = "U0BENCH"


@dataclass
class Target:
    """One app under test: where to send, and what it measured."""

    name: str
    urls: list[str]
    latencies_ms: list[float] = field(default_factory=list)
    round_p99_ms: list[float] = field(default_factory=list)


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest sample with `fraction` of them at or below it."""
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil without floats creeping in
    return ordered[int(rank) - 1]


class Client:
    """bench/ack_client.py, a process of its own: sends a burst, answers the round trips."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls) -> Client:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(CLIENT),
            SIGNING_SECRET,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def burst(self, urls: list[str], double: SlackDouble, texts: list[str]) -> list[float]:
        """Send every request at once; return each one's round trip in milliseconds."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        bodies = [
            slash_command_body(
                text=text,
                user_id=USER,
                channel_id=CHANNEL,
                response_url=double.new_response_url(channel=CHANNEL, user_id=USER),
            )
            for text in texts
        ]
        order = {"targets": urls, "bodies": [[body.body, body.content_type] for body in bodies]}
        self.proc.stdin.write(json.dumps(order).encode() + b"\n")
        await self.proc.stdin.drain()
        answer = json.loads(await self.proc.stdout.readline() or b'{"error": "client exited"}')
        if "error" in answer:
            raise RuntimeError(f"the load client: {answer['error']}")
        return [float(ms) for ms in answer["ms"]]

    async def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            async with asyncio.timeout(5):
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """(first quartile, median, third quartile)."""
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


async def run(args: argparse.Namespace) -> None:
    requests, rounds = args.requests, args.rounds
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("slack_bolt").setLevel(logging.ERROR)  # "token will be unused" noise
    async with AsyncExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="ack-bench-"))
        policy = load_policy(None)
        last_call = time.perf_counter()
        label = ""  # the round whose declarations are being announced
        announced: set[str] = set()  # its requests (by text) announced so far
        all_announced = asyncio.Event()

        async def on_event(item: RecordedCall | RecordedResponse) -> None:
            nonlocal last_call
            last_call = time.perf_counter()
            if (
                isinstance(item, RecordedCall)
                and item.method == "chat.postMessage"
                and item.ok
                and item.params.get("channel") == policy.announce_channel
                and (found := re.search(rf"Bench {label} request \d+", str(item.params["text"])))
            ):
                announced.add(found.group())
                if len(announced) == requests:
                    all_announced.set()

        # Slack's limits, enforced at the pace the bot keeps: a 429 would show as a stall.
        double = SlackDouble(
            bot_token=BOT_TOKEN, on_event=on_event, rate_limits=SlackLimits(scale=args.pace_scale)
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
            # Straight to the processes, in turn: the fronts (in this process) are not used.
            bot_urls = [url + "/slack/events" for url in bots.backends]
            bare_urls = [url + "/slack/events" for url in bares.backends]
            setup = f"{args.replicas} processes each, requests sent to them in turn"
        else:
            database_url = args.database_url or f"sqlite:///{tmp}/bench.db"
            redis_url = None
            if args.redis:
                _, redis_url, _ = stack.enter_context(servers(database_url, True))
            bot_url = await start_in_process(
                stack,
                double,
                database_url,
                pace_scale=args.pace_scale,
                redis_url=redis_url,
                policy=policy,
            )
            bare_runner, bare_port = await serve(start_bare_app(double.api_url))
            stack.push_async_callback(bare_runner.cleanup)
            bot_urls = [bot_url]
            bare_urls = [f"http://127.0.0.1:{bare_port}/slack/events"]
            setup = "both in this process"

        targets = {"bot": Target("bot", bot_urls), "bare": Target("bare", bare_urls)}
        client = await Client.start()
        stack.push_async_callback(client.stop)

        settle_s: list[float] = []

        async def fire(name: str, round_label: str, record: bool) -> None:
            nonlocal label
            label = round_label
            announced.clear()
            all_announced.clear()
            texts = [f"declare P2 Bench {label} request {n}" for n in range(requests)]
            # Same starting line for both: no garbage left from the last round to collect.
            gc.collect()
            started = time.perf_counter()
            latencies = await client.burst(targets[name].urls, double, texts)
            if name == "bot":
                async with asyncio.timeout(120):
                    await all_announced.wait()
                # Then the rest of its Slack calls (the level-1 pages, which go to the same
                # channel, second answers, DMs): done once the double has had none for QUIET_S,
                # so no round runs beside the last one's work.
                while (idle := time.perf_counter() - last_call) < QUIET_S:  # noqa: ASYNC110
                    await asyncio.sleep(QUIET_S - idle)
                if record:
                    settle_s.append(last_call - started)
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
            bot_p99, bare_p99 = targets["bot"].round_p99_ms[-1], targets["bare"].round_p99_ms[-1]
            print(
                f"  round {round_no + 1:2}: p99 bot {bot_p99:6.1f} ms, bare {bare_p99:6.1f} ms"
                f" (ratio {bot_p99 / bare_p99:.2f});"
                f" the Slack calls all made after {settle_s[-1]:.2f} s"
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
        print(f"(p99 of all {count} requests pooled: ratio {p99_ratio:.2f}; one round moves it)")
        pairs = zip(bot_t.round_p99_ms, bare_t.round_p99_ms, strict=True)
        ratios = [bot / bare for bot, bare in pairs]
        q1, ratio, q3 = quartiles(ratios)
        _, bot_p99, _ = quartiles(bot_t.round_p99_ms)
        _, bare_p99, _ = quartiles(bare_t.round_p99_ms)
        goal = "meets" if ratio <= GOAL_RATIO else "misses"
        print(
            f"p99 ratio {ratio:.2f} (median over {len(ratios)} back-to-back round pairs,"
            f" interquartile {q1:.2f}-{q3:.2f}) {goal} the goal of at most {GOAL_RATIO}"
        )
        print(f"median round p99: bot {bot_p99:.1f} ms, bare {bare_p99:.1f} ms")
        print(
            f"the bot's Slack calls for {requests} declarations (announcements, pages, answers):"
            f" all made {statistics.median(settle_s):.2f} s after the burst began (median of"
            f" {len(settle_s)} rounds; worst {max(settle_s):.2f} s)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50, help="concurrent requests per round")
    parser.add_argument("--rounds", type=int, default=15, help="measured rounds per app")
    parser.add_argument(
        "--database-url",
        help="the bot's store (default: SQLite in a temporary directory; with --replicas,"
        " a throwaway PostgreSQL)",
    )
    parser.add_argument(
        "--replicas", type=int, default=0, help="run each app as N processes, sent requests in turn"
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
