"""`/diagnose` timings: concurrency of one diagnosis, and the ack next to a bare Bolt app.

    .venv/bin/python bench/diagnose.py [--endpoints 30] [--rounds 3] [--acks 30]

1. One diagnosis over many checks: a catalog entry with `--endpoints` HTTP endpoints on a
   loopback server that answers each after its own delay (spread up to 400 ms). The total time
   of one `DiagnosticsService.diagnose` is set against the slowest single check of the same
   run. Concurrent checks make the ratio close to 1 (goal: at most 1.2); sequential checks
   would make it about endpoints / 2.
2. Ack time of `/diagnose` (the real bot, Slack double as its Web API) against a bare Bolt app
   whose `/diagnose` only acks, same adapter, same process, rounds alternating.

Figures only, no assertions: see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import yaml
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import SystemClock
from bot.console.workspace import SlackDouble
from bot.diagnostics.service import DiagnosticsService
from bot.models import Actor
from bot.permissions import Permissions, StaticDirectory
from bot.policy import Policy, default_policy_text, parse_policy
from bot.runtime import create_bot
from bot.settings import Settings
from bot.slack.requests import SlackRequestSender, slash_command_body
from bot.store import create_store, migrate

SIGNING_SECRET = "bench-signing-secret-0123456789ab"
BOT_TOKEN = "xoxb-bench"


async def start_delay_server() -> tuple[web.AppRunner, int]:
    async def delayed(request: web.Request) -> web.Response:
        await asyncio.sleep(int(request.match_info["ms"]) / 1000)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/delay/{ms}", delayed)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


def bench_policy(port: int, endpoints: int) -> Policy:
    data = yaml.safe_load(default_policy_text())
    delays = [int(400 * (i + 1) / endpoints) for i in range(endpoints)]
    data["services"] = {
        "web": {"http": [{"url": f"http://127.0.0.1:{port}/delay/{ms}"} for ms in delays]}
    }
    return parse_policy(yaml.safe_dump(data))


async def concurrency(policy: Policy, rounds: int, tmp: str) -> None:
    store = create_store(f"sqlite:///{tmp}/concurrency.db")
    await store.open()
    await migrate(store)
    service = DiagnosticsService(
        policy=policy,
        store=store,
        clock=SystemClock(),
        permissions=Permissions(policy, StaticDirectory()),
    )
    print(f"one /diagnose over {len(policy.services['web'].http)} checks:")
    ratios = []
    for index in range(rounds):
        started = time.perf_counter()
        diagnosis = await service.diagnose("web", Actor("U0BENCH"))
        total = time.perf_counter() - started
        slowest = max(run.seconds for run in diagnosis.report.runs)
        ratios.append(total / slowest)
        print(
            f"  round {index + 1}: total {total * 1000:.0f} ms, slowest check"
            f" {slowest * 1000:.0f} ms, ratio {total / slowest:.2f}"
        )
    print(f"  median ratio {statistics.median(ratios):.2f} (goal <= 1.2)")
    await store.close()


async def start_bare_app(api_url: str) -> tuple[web.AppRunner, str]:
    app = AsyncApp(
        client=AsyncWebClient(token=BOT_TOKEN, base_url=api_url, timeout=10),
        signing_secret=SIGNING_SECRET,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )

    @app.command("/diagnose")
    async def diagnose(ack: Callable[[], Awaitable[None]]) -> None:
        await ack()

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    web_app = web.Application()
    web_app.router.add_post("/slack/events", events)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"


async def ack_times(policy: Policy, acks: int, tmp: str) -> None:
    double = SlackDouble(bot_token=BOT_TOKEN)
    await double.start()
    settings = Settings(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=double.api_url,
        DATABASE_URL=f"sqlite:///{tmp}/acks.db",
    )
    bot = create_bot(settings, policy=policy)
    await bot.start("127.0.0.1", 0)
    bare_runner, bare_url = await start_bare_app(double.api_url)
    senders = {
        "bot": SlackRequestSender(f"http://127.0.0.1:{bot.port}/slack/events", SIGNING_SECRET),
        "bare": SlackRequestSender(bare_url, SIGNING_SECRET),
    }
    samples: dict[str, list[float]] = {"bot": [], "bare": []}
    try:
        for index in range(acks + 2):
            order = ("bot", "bare") if index % 2 else ("bare", "bot")
            for name in order:
                body = slash_command_body(
                    command="/diagnose",
                    text="web",
                    user_id="U0BENCH",
                    channel_id="C0BENCH",
                    response_url=double.new_response_url(channel="C0BENCH", user_id="U0BENCH"),
                )
                started = time.perf_counter()
                response = await senders[name].send(body)
                elapsed = (time.perf_counter() - started) * 1000
                assert response.status == 200, response
                if index >= 2:  # warm-up
                    samples[name].append(elapsed)
            await asyncio.sleep(0.45)  # let the bot's diagnosis finish before the next ack
        print(f"ack of /diagnose over {acks} requests each (ms):")
        for name, values in samples.items():
            ordered = sorted(values)
            print(
                f"  {name:>4}: median {statistics.median(values):.1f},"
                f" p90 {ordered[int(len(ordered) * 0.9) - 1]:.1f}, max {ordered[-1]:.1f}"
            )
    finally:
        for sender in senders.values():
            await sender.close()
        await bare_runner.cleanup()
        await bot.stop()
        await double.stop()


async def main(endpoints: int, rounds: int, acks: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("slack_bolt").setLevel(logging.ERROR)
    runner, port = await start_delay_server()
    policy = bench_policy(port, endpoints)
    try:
        with tempfile.TemporaryDirectory(prefix="diagnose-bench-") as tmp:
            await concurrency(policy, rounds, tmp)
            await ack_times(policy, acks, str(Path(tmp)))
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--acks", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(main(args.endpoints, args.rounds, args.acks))
