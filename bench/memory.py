"""Resident memory of the bot at rest and after many declarations, and what holds it.

    .venv/bin/python bench/memory.py [--count 10000] [--batch 500] [--store sqlite|postgres]
    .venv/bin/python bench/memory.py --count 1500 --batch 300 --store postgres --trace
    MEMTRACE_FRAMES=0 .venv/bin/python bench/memory.py ... --trace     # arenas, no tracemalloc
    .venv/bin/python bench/memory.py --in-process [--database-url URL] [--trace]

By default the bot is what production runs: a `chatops-bot run` process (HTTP mode, the Slack
double in this process, so none of the double's code or records are in the bot's memory),
measured with psutil; and, in the same run, a baseline process that first imports what the bot
imported eagerly before (kubernetes, boto3, the Socket Mode client). Both declare the same
batches; printed: each one's RSS at rest and after each batch. With `--trace` the bot process
runs under tracemalloc (bench/memtrace.py, preloaded; several times slower): printed also the
allocator's arenas and what Python holds at rest, after the first batch and at the end, and
the allocation sites that grew.

`--in-process` runs the bot in this process, beside the double:
the real bot (`create_bot` + `Bot.start`, SQLite in a temporary folder unless
`--database-url`) declares `--count` P2 incidents from signed `/incident declare` commands,
`--batch` at a time, each batch delivered (announced) before the next. The Slack double runs
in the same process, so after every batch its records (calls, messages, response URLs) are
dropped: what stays is the bot's. Printed: RSS at rest and after each batch, the growth per
incident over the second half (past the warm-up), and with `--trace` the ten allocation
sites (tracemalloc) that grew most, outside the double. Goal: under 100 MB after 10,000
incidents, and flat.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import signal
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cluster import AnnouncementCounter, cluster, servers  # noqa: E402
from bot.console.workspace import SlackDouble  # noqa: E402
from bot.policy import load_policy  # noqa: E402
from bot.runtime import create_bot  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.slack.limits import SlackLimits  # noqa: E402
from bot.slack.requests import SlackRequestSender, slash_command_body  # noqa: E402

SIGNING_SECRET = "bench-signing-secret-0123456789ab"
BOT_TOKEN = "xoxb-bench"
CHANNEL = "C0BENCH"
USER = "U0BENCH"
GOAL_MB = 100.0  # issue 19: under 100 MB after 10,000 incidents
PACE_SCALE = 1000.0  # Slack's pace is not what is measured here
# What `chatops-bot run` imported at start before they were imported on first use.
EAGER_BEFORE = ("kubernetes", "boto3", "slack_bolt.adapter.socket_mode.aiohttp")


def rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 1e6


def forget_double(double: SlackDouble) -> None:
    """Drop what the double remembers (it stands in for Slack, whose memory is not ours)."""
    double.reset()
    for channel in double.state.channels.values():
        channel.messages.clear()
        channel.pinned.clear()
    double.state.ephemerals.clear()
    double._response_urls.clear()


async def snapshot_of(pid: int, out: Path, number: int) -> tracemalloc.Snapshot | None:
    """Have the bot process (preloaded with bench/memtrace.py) write a snapshot; load it."""
    os.kill(pid, signal.SIGUSR1)
    async with asyncio.timeout(120):
        while not out.with_name(f"{out.name}.{number}.done").exists():  # noqa: ASYNC110 (a file)
            await asyncio.sleep(0.1)
    snap = out.with_name(f"{out.name}.{number}.snap")
    return tracemalloc.Snapshot.load(str(snap)) if snap.exists() else None


def arenas(out: Path, number: int) -> str:
    """The allocator's arenas in use and its free bytes (`MEMTRACE_FRAMES=0` runs only)."""
    path = out.with_name(f"{out.name}.{number}.arenas")
    text = path.read_text() if path.exists() else ""
    pattern = r"# (arenas allocated current|bytes in available blocks)\s+=\s+([\d,]+)"
    found = {key: int(value.replace(",", "")) for key, value in re.findall(pattern, text)}
    if not found:
        return "no arena figures (tracemalloc hides them: MEMTRACE_FRAMES=0 shows them)"
    free = found.get("bytes in available blocks", 0) / 1e6
    return f"{found.get('arenas allocated current', 0)} arenas of 1 MiB, {free:.1f} MB free in them"


def print_growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot) -> None:
    skip = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
        tracemalloc.Filter(False, "*/bench/memtrace.py"),
    ]
    before, after = before.filter_traces(skip), after.filter_traces(skip)
    total = [sum(s.size for s in snap.statistics("filename")) / 1e6 for snap in (before, after)]
    print(f"  Python objects (tracemalloc): {total[0]:.1f} MB -> {total[1]:.1f} MB")
    for stat in after.compare_to(before, "lineno")[:10]:
        where = stat.traceback[0]
        name = where.filename.split("site-packages/")[-1].replace(str(ROOT) + "/", "")
        print(
            f"  {stat.size_diff / 1e3:+9.1f} KB {stat.count_diff:+7d} blocks  {name}:{where.lineno}"
        )


async def run_processes(
    count: int, batch: int, store: str, baseline: bool = True, trace: bool = False
) -> None:
    """`chatops-bot run` as production runs it, and the baseline with the old eager imports.

    With `trace`, the bot process runs under tracemalloc (bench/memtrace.py, slower): what
    Python holds at rest, after the first batch and at the end, and what grew."""
    announced = AnnouncementCounter(load_policy(None).announce_channel)
    double = SlackDouble(
        bot_token=BOT_TOKEN, on_event=announced, rate_limits=SlackLimits(scale=PACE_SCALE)
    )
    await double.start()
    double.add_channel(CHANNEL, "bench")
    folder = tempfile.mkdtemp(prefix="chatops-mem-")
    variants = {"before (eager imports)": EAGER_BEFORE, "now": ()}
    if not baseline:
        del variants["before (eager imports)"]
    figures: dict[str, list[tuple[int, float]]] = {name: [] for name in variants}
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    gate = asyncio.Semaphore(20)
    try:
        with servers(None if store == "postgres" else "unused", redis=False) as (db, _, _):
            for number, (name, preload) in enumerate(variants.items()):
                url = db(f"mem{number}") if store == "postgres" else ""
                url = url or f"sqlite:///{folder}/mem{number}.db"
                out = Path(folder) / f"trace{number}"
                traced = {"PYTHONPATH": str(ROOT / "bench"), "MEMTRACE_OUT": str(out)}
                async with cluster(
                    "bot",
                    1,
                    double,
                    database_url=url,
                    pace_scale=PACE_SCALE,
                    preload=(*preload, "memtrace") if trace else preload,
                    extra_env=traced if trace else None,
                ) as bots:
                    process = psutil.Process(bots.pids[0])
                    sender = SlackRequestSender(bots.url, SIGNING_SECRET, session=session)

                    async def declare(n: int, sender: SlackRequestSender = sender) -> None:
                        body = slash_command_body(
                            text=f"declare P2 Memory bench declaration {n}",
                            user_id=USER,
                            channel_id=CHANNEL,
                            response_url=double.new_response_url(channel=CHANNEL, user_id=USER),
                        )
                        async with gate:
                            assert (await sender.send(body)).status == 200

                    await asyncio.sleep(2)  # its first sweeps and auth.test done
                    figures[name].append((0, process.memory_info().rss / 1e6))
                    print(f"{name}: at rest {figures[name][0][1]:.1f} MB", flush=True)
                    snapshots = [await snapshot_of(bots.pids[0], out, 0)] if trace else []
                    base = announced.posted
                    for first in range(0, count, batch):
                        done = min(count, first + batch)
                        await asyncio.gather(*(declare(n) for n in range(first, done)))
                        await announced.wait_for(base + done, within=300)
                        forget_double(double)
                        figures[name].append((done, process.memory_info().rss / 1e6))
                        print(f"  after {done:>6} incidents: {figures[name][-1][1]:.1f} MB")
                        if trace and (done == batch or done == count):
                            snapshots.append(await snapshot_of(bots.pids[0], out, len(snapshots)))
                    if trace:
                        print(f"{name}, at rest: {arenas(out, 0)}")
                        print(f"{name}, after the first batch: {arenas(out, 1)}")
                        print(f"{name}, after {count}: {arenas(out, len(snapshots) - 1)}")
                        if snapshots[0] is not None and snapshots[1] is not None:
                            print(f"what grew from rest to the first batch ({batch}):")
                            print_growth(snapshots[0], snapshots[1])
                        if snapshots[1] is not None and snapshots[-1] is not None:
                            print(f"what grew from the first batch to {count}:")
                            print_growth(snapshots[1], snapshots[-1])
    finally:
        await session.close()
        await double.stop()
    print(f"\nRSS of the bot process (MB), {store}; goal under {GOAL_MB:.0f} MB and flat:")
    print(f"{'':24}{'at rest':>9}{'first batch':>13}{f'after {count}':>13}{'KB/incident':>13}")
    for name, rows in figures.items():
        half = next(f for f in rows if f[0] >= count // 2)
        per = (rows[-1][1] - half[1]) * 1e6 / max(1, rows[-1][0] - half[0]) / 1000
        print(f"{name:24}{rows[0][1]:9.1f}{rows[1][1]:13.1f}{rows[-1][1]:13.1f}{per:13.2f}")
    now = figures["now"]
    verdict = "meets" if now[-1][1] < GOAL_MB else "misses"
    if baseline:
        before = figures["before (eager imports)"]
        print(
            f"now/before at rest {now[0][1] / before[0][1]:.2f}, after {count}"
            f" {now[-1][1] / before[-1][1]:.2f}",
            end="; ",
        )
    print(f"under {GOAL_MB:.0f} MB: {verdict} it")


async def run(count: int, batch: int, database_url: str | None, trace: bool) -> None:
    folder = tempfile.mkdtemp(prefix="chatops-mem-")
    url = database_url or f"sqlite:///{folder}/bench.db"
    double = SlackDouble(bot_token=BOT_TOKEN)
    await double.start()
    double.add_channel(CHANNEL, "bench")
    settings = Settings(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=double.api_url,
        SLACK_APP_TOKEN=None,
        DATABASE_URL=url,
        REDIS_URL=None,
        SLACK_PACE_SCALE=1000.0,  # Slack's pace is not what is measured here
    )
    bot = create_bot(settings, policy=load_policy(None))
    await bot.start("127.0.0.1", 0)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    sender = SlackRequestSender(
        f"http://127.0.0.1:{bot.port}/slack/events", SIGNING_SECRET, session=session
    )
    gate = asyncio.Semaphore(20)

    async def declare(n: int) -> None:
        body = slash_command_body(
            text=f"declare P2 Memory bench declaration {n}",
            user_id=USER,
            channel_id=CHANNEL,
            response_url=double.new_response_url(channel=CHANNEL, user_id=USER),
        )
        async with gate:
            assert (await sender.send(body)).status == 200

    try:
        await bot.services.dispatcher.drain()
        at_rest = rss_mb()
        print(f"at rest: {at_rest:.1f} MB")
        figures: list[tuple[int, float]] = [(0, at_rest)]
        snapshot = None
        started = time.perf_counter()
        for first in range(0, count, batch):
            await asyncio.gather(*(declare(n) for n in range(first, min(count, first + batch))))
            await bot.services.dispatcher.drain(timeout=120)
            forget_double(double)
            done = min(count, first + batch)
            figures.append((done, rss_mb()))
            print(f"after {done:>6} incidents: {figures[-1][1]:.1f} MB", flush=True)
            if trace and snapshot is None and done >= count // 2:
                tracemalloc.start(8)
                snapshot = tracemalloc.take_snapshot()
        elapsed = time.perf_counter() - started
        half = next(f for f in figures if f[0] >= count // 2)
        per_incident = (figures[-1][1] - half[1]) * 1e6 / max(1, figures[-1][0] - half[0])
        final = figures[-1][1]
        print(f"\n{count} declarations in {elapsed:.0f} s")
        print(f"RSS at rest {at_rest:.1f} MB, after {count}: {final:.1f} MB")
        print(f"growth over the second half: {per_incident / 1000:.2f} KB per incident")
        verdict = "meets" if final < GOAL_MB and per_incident < 1000 else "misses"
        print(f"goal: under {GOAL_MB:.0f} MB and flat (under 1 KB per incident): {verdict} it")
        if trace and snapshot is not None:
            gc.collect()
            after = tracemalloc.take_snapshot()
            keep = [tracemalloc.Filter(False, "*/console/workspace/*")]
            diff = after.filter_traces(keep).compare_to(snapshot.filter_traces(keep), "traceback")
            print("\ngrowth by allocation site over the second half (outside the double):")
            for stat in diff[:10]:
                frame = stat.traceback.format(limit=4, most_recent_first=True)
                print(f"  {stat.size_diff / 1e3:+9.1f} KB {stat.count_diff:+7d} blocks")
                for line in frame[:8]:
                    print("     ", line.strip())
    finally:
        await sender.close()
        await session.close()
        await bot.stop()
        await double.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="declarations in all")
    parser.add_argument("--batch", type=int, default=500, help="declarations per batch")
    parser.add_argument(
        "--database-url", help="with --in-process: a PostgreSQL DSN (default: SQLite)"
    )
    parser.add_argument("--trace", action="store_true", help="show what grew (tracemalloc)")
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--in-process", action="store_true", help="the bot in this process, beside the double"
    )
    parser.add_argument(
        "--no-baseline", action="store_true", help="only the bot as it is (no eager imports)"
    )
    args = parser.parse_args(argv)
    if args.in_process:
        asyncio.run(run(args.count, args.batch, args.database_url, args.trace))
    else:
        asyncio.run(
            run_processes(args.count, args.batch, args.store, not args.no_baseline, args.trace)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
