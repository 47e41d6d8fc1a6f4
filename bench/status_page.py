"""Requests a second for the public status page from one bot process, against /livez.

    .venv/bin/python bench/status_page.py [--requests 4000] [--concurrency 32] [--rounds 3]
        [--incidents 12] [--refresh-seconds 5] [--database-url URL]

Seeds the store through the real services (incidents declared, updated, published; a
catalog of components), then starts ONE `chatops-bot run` process on it and, from this
process, sends a bounded number of GETs over loopback with aiohttp (keep-alive, at most
`--concurrency` in flight) to /livez (the baseline: the same server and event loop, a
handler that does nothing), /status, /status.json and /status/feed.atom, and the same page
revalidated with its ETag (If-None-Match, a 304). Paths alternate round by round so none
gets a warmer machine. Figures only, no assertions: see bench/README.md.

The load generator shares the machine: /livez shows what it and the server's HTTP layer
allow, and the ratio to it what the status page itself costs. `--refresh-seconds 0` makes
every hit read the status version from the store, to compare with the cached default.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cluster import BOT_TOKEN, PACE_SCALE, SIGNING_SECRET, _ready, bot_env  # noqa: E402
from bot.console.workspace import SlackDouble  # noqa: E402
from bot.incidents.schemas import DeclareIncident  # noqa: E402
from bot.models import Actor, Status  # noqa: E402
from bot.policy import Policy, default_policy_text  # noqa: E402
from bot.runtime import create_bot  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.slack.limits import SlackLimits  # noqa: E402

GOAL_RPS = 1000
SERVICES = ("checkout", "payments", "search", "accounts", "notifications")
PATHS = ("/livez", "/status", "/status.json", "/status/feed.atom", "/status (304)")


def policy_text() -> str:
    data = yaml.safe_load(default_policy_text())
    data["services"] = {name: {"http": [{"url": "http://127.0.0.1:9/health"}]} for name in SERVICES}
    return yaml.safe_dump(data)


async def seed(database_url: str, double: SlackDouble, incidents: int) -> None:
    """Declare, update and publish through the services, as people would; let Slack hear."""
    settings = Settings(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=double.api_url,
        SLACK_PACE_SCALE=PACE_SCALE,
        DATABASE_URL=database_url,
    )
    policy = Policy.model_validate(yaml.safe_load(policy_text()))
    bot = create_bot(settings, policy=policy)
    services = bot.services
    await services.start(run_scheduler=False)
    try:
        person = Actor("U0BENCH")
        for n in range(incidents):
            incident = await services.incidents.declare(
                DeclareIncident(
                    severity=f"P{n % 4}",
                    title=f"Incident {n}: {SERVICES[n % len(SERVICES)]} answers slowly",
                    impact="Some customers see errors & retries <b>not</b> markup",
                    services=(SERVICES[n % len(SERVICES)],),
                ),
                person,
            )
            for status in (Status.IDENTIFIED, Status.MONITORING):
                await services.incidents.update_status(
                    incident.id, person, status=status, message=f"{status.label}: step {n}"
                )
            if n % 2:  # half of them resolved, within the 90 days shown
                await services.incidents.resolve(incident.id, person, summary="Fixed by rollback")
            await services.status.publish(incident.id, person)
        await services.dispatcher.drain()
    finally:
        await services.close()


async def hammer(
    session: aiohttp.ClientSession, url: str, requests: int, concurrency: int, etag: str | None
) -> tuple[float, list[float]]:
    """`requests` GETs, at most `concurrency` at once: (requests a second, latencies ms)."""
    headers = {"If-None-Match": etag} if etag else {}
    expected = 304 if etag else 200
    latencies: list[float] = []
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            async with session.get(url, headers=headers) as response:
                await response.read()
                if response.status != expected:
                    raise RuntimeError(f"{url}: HTTP {response.status}, expected {expected}")
            latencies.append((time.perf_counter() - started) * 1000)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return requests / (time.perf_counter() - began), latencies


async def run(args: argparse.Namespace) -> None:
    from tests.processes import CHATOPS_BOT
    from tests.servers import free_port

    async with AsyncExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-status-")))
        database_url = args.database_url or f"sqlite:///{tmp}/status.db"
        double = SlackDouble(
            bot_token=BOT_TOKEN, rate_limits=SlackLimits(scale=PACE_SCALE), openapi_spec=None
        )
        await double.start()
        stack.push_async_callback(double.stop)
        print(f"seeding {args.incidents} published incidents into {database_url.split('@')[-1]}")
        await seed(database_url, double, args.incidents)

        policy_file = tmp / "policy.yml"
        policy_file.write_text(policy_text())
        env = bot_env(double, database_url, None, PACE_SCALE)
        env |= {
            "CHATOPS_POLICY": str(policy_file),
            "STATUS_REFRESH_SECONDS": str(args.refresh_seconds),
        }
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = tmp / "bot.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(  # noqa: ASYNC220 (started once, before measuring)
                [str(CHATOPS_BOT), "run", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

        def stop() -> None:
            proc.terminate()
            proc.wait(timeout=15)

        stack.callback(stop)
        await _ready(proc, base, log)
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        session = await stack.enter_async_context(aiohttp.ClientSession(connector=connector))
        async with session.get(base + "/status") as response:
            etag = response.headers["ETag"]
            size = len(await response.read())
        print(
            f"one bot process (pid {proc.pid}), STATUS_REFRESH_SECONDS={args.refresh_seconds};"
            f" /status is {size:,} bytes; {args.requests} requests per path and round,"
            f" {args.concurrency} in flight"
        )
        for path in PATHS:  # warm-up: every document built, connections open
            url = base + path.split(" ")[0]
            await hammer(session, url, 200, args.concurrency, etag if "304" in path else None)

        rates: dict[str, list[float]] = {path: [] for path in PATHS}
        latencies: dict[str, list[float]] = {path: [] for path in PATHS}
        for round_number in range(args.rounds):
            order = PATHS if round_number % 2 == 0 else tuple(reversed(PATHS))
            for path in order:
                url = base + path.split(" ")[0]
                rate, samples = await hammer(
                    session, url, args.requests, args.concurrency, etag if "304" in path else None
                )
                rates[path].append(rate)
                latencies[path].extend(samples)
            print(
                f"round {round_number + 1}: "
                + ", ".join(f"{p} {rates[p][-1]:,.0f}/s" for p in PATHS)
            )

        print()
        print(f"{'':20}{'req/s':>10}{'vs livez':>10}{'p50':>9}{'p99':>9}   (median of rounds)")
        baseline = statistics.median(rates["/livez"])
        for path in PATHS:
            rate = statistics.median(rates[path])
            ordered = sorted(latencies[path])
            p50 = ordered[len(ordered) // 2]
            p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
            print(f"{path:20}{rate:10,.0f}{rate / baseline:9.2f}x{p50:7.1f}ms{p99:7.1f}ms")
        worst = min(statistics.median(rates[p]) for p in PATHS if p != "/livez")
        verdict = "meets" if worst >= GOAL_RPS else "misses"
        print(f"slowest status document: {worst:,.0f} req/s, {verdict} the goal of {GOAL_RPS:,}/s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000, help="GETs per path and round")
    parser.add_argument("--concurrency", type=int, default=32, help="GETs in flight at once")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per path")
    parser.add_argument("--incidents", type=int, default=12, help="published incidents seeded")
    parser.add_argument(
        "--refresh-seconds",
        type=float,
        default=5.0,
        help="the bot's STATUS_REFRESH_SECONDS (0: read the status version on every hit)",
    )
    parser.add_argument("--database-url", help="the store (default: SQLite in a temp directory)")
    args = parser.parse_args(argv)
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
