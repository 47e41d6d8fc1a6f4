"""The CPU of delivering declarations' messages, alone: warm, and paced as Slack paces them.

    .venv/bin/python bench/outbox_tail.py [--count 600] [--rounds 2] [--profile PREFIX]

`--count` P2 declarations are declared through the services (PostgreSQL, the dispatcher
stopped), then the outbox delivers their announcements, pages and DMs (3 Slack posts each) to
a trivial Web API in a child process (bench/slack_calls.py's), on uvloop as `chatops-bot run`
delivers them. This process' CPU for the delivery, per declaration, user and system, is
printed twice per round, alternated:

    warm     Slack's clock 10,000 times faster: no post waits for its slot
    paced    100 times faster (bench/declare_burst.py's default): each post in the busy
             announcement channel waits about 10 ms for its slot, and the loop sleeps

The work is the same (the same calls, the same statements); what differs is that the paced
run wakes up from a short sleep for every post. `--profile PREFIX` writes a cProfile of each
(`PREFIX-warm.prof`, `PREFIX-paced.prof`) to compare function by function. Figures only:
see bench/README.md, "Hot paths (issue 19)".
"""

from __future__ import annotations

import argparse
import cProfile
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.slack_calls import TOKEN, trivial_api  # noqa: E402
from bot.app import build_client  # noqa: E402
from bot.incidents.schemas import DeclareIncident  # noqa: E402
from bot.models import Actor, Severity  # noqa: E402
from bot.policy import load_policy  # noqa: E402
from bot.services import build_services  # noqa: E402
from bot.slack.client import PacedWebClient  # noqa: E402
from bot.slack.limits import SlackLimits  # noqa: E402
from bot.slack.notifier import SlackNotifier  # noqa: E402
from bot.slack.pace import LocalPacer  # noqa: E402
from bot.store import create_store  # noqa: E402

SCALES = {"warm": 1e4, "paced": 100.0}


async def deliver(database_url: str, api: str, count: int, scale: float, profile: str) -> None:
    client = build_client(TOKEN, api, pacer=LocalPacer(), limits=SlackLimits(scale=scale))
    assert isinstance(client, PacedWebClient)
    client.keep_connections()
    services = build_services(
        policy=load_policy(None), store=create_store(database_url), notifier=SlackNotifier(client)
    )
    await services.start(run_dispatcher=False, run_scheduler=False)
    try:
        for n in range(count):
            await services.incidents.declare(
                DeclareIncident(severity=Severity.P2, title=f"Tail {n}"),
                Actor(user_id="U0BENCH"),
                request_id=f"tail-{n}",
            )
        profiler = cProfile.Profile() if profile else None
        before = os.times()
        if profiler is not None:
            profiler.enable()
        await services.dispatcher.drain(timeout=600)
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile)
        after = os.times()
    finally:
        await services.close()
        await client.close_connections()
    user, system = (after.user - before.user) / count, (after.system - before.system) / count
    label = next(name for name, value in SCALES.items() if value == scale)
    print(
        f"  {label:<6} {(user + system) * 1000:5.2f} ms a declaration"
        f" (user {user * 1000:.2f}, system {system * 1000:.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--profile", default="", help="write PREFIX-warm.prof, PREFIX-paced.prof")
    args = parser.parse_args()
    import uvloop

    from tests.servers import PostgresServer

    with trivial_api() as base, PostgresServer() as postgres:
        print(f"delivering {args.count} P2 declarations' messages (3 posts each), PostgreSQL")
        for n in range(args.rounds):
            for label, scale in SCALES.items():
                url = postgres.create_database(f"tail_{label}_{n}")
                bot = Path(sys.executable).with_name("chatops-bot")
                env = {**os.environ, "DATABASE_URL": url}
                subprocess.run([bot, "migrate"], env=env, check=True, capture_output=True)
                profile = f"{args.profile}-{label}.prof" if args.profile else ""
                uvloop.run(deliver(url, f"{base}/api/", args.count, scale, profile))


if __name__ == "__main__":
    main()
