"""The outbox's throughput: how many effects a second the dispatcher delivers and marks done.

    .venv/bin/python bench/outbox_throughput.py --before 1750492   # and the code of that commit
    .venv/bin/python bench/outbox_throughput.py --effects 20000 --lanes 2000 --store sqlite
    .venv/bin/python bench/outbox_throughput.py --database-url postgresql://user@host/bench

`--effects` effects over `--lanes` lanes (interleaved, as many incidents' changes are) are
queued in a fresh database, then one OutboxDispatcher (default options) with a handler that
does no I/O (it records the effect) delivers them until none is left. With `--before REV` the
same run also measures the dispatcher of that commit (its `bot/` extracted with `git archive`
into a temporary directory): each measurement is a process of its own, on a database of its
own, alternating before/now, `--rounds` times.

Printed per run: effects a second (from the first claim to the last effect marked done) and
whether each effect was delivered once and each lane's in the order queued (a run that breaks
it says so and the benchmark exits 1). PostgreSQL is a throwaway server (tests/servers.py,
fsync off) unless `--database-url` names one (emptied before each run); SQLite is a file in a
temporary directory, as the bot runs it (WAL, synchronous FULL). Figures only: timings on a
shared machine make poor assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
_PAYLOAD_TEXT = "x" * 200  # about an announcement's payload


async def measure(url: str, effects: int, lanes: int) -> dict[str, Any]:
    """Queue, then deliver everything with the `bot` package first on sys.path."""
    from bot import outbox
    from bot.clock import SystemClock
    from bot.outbox import Effect, OutboxDispatcher
    from bot.store import create_store, migrate

    # The dispatcher before the rename called the lane `incident_id`.
    lane_arg = "lane" if "lane" in inspect.signature(outbox.enqueue).parameters else "incident_id"
    store = create_store(url)
    await store.open()
    try:
        await migrate(store)
        async with store.transaction() as tx:
            await tx.execute("DELETE FROM outbox")
        now = SystemClock().now()
        for start in range(0, effects, 500):
            async with store.transaction() as tx:
                for n in range(start, min(effects, start + 500)):
                    payload = {"n": n, "text": _PAYLOAD_TEXT}
                    lane = f"INC-20261205-{n % lanes:05d}"
                    await outbox.enqueue(tx, now, "bench.post", payload, **{lane_arg: lane})
        dispatcher = OutboxDispatcher(store, SystemClock())
        seen: dict[str, list[int]] = defaultdict(list)

        async def post(effect: Effect) -> None:
            seen[getattr(effect, lane_arg) or ""].append(effect.payload["n"])

        dispatcher.register("bench.post", post)
        began = time.perf_counter()
        delivered = 0
        while await dispatcher.pending_count():
            delivered += await dispatcher.deliver_due()
        elapsed = time.perf_counter() - began
    finally:
        await store.close()
    expected = {f"INC-20261205-{n:05d}": list(range(n, effects, lanes)) for n in range(lanes)}
    return {
        "rate": effects / elapsed,
        "elapsed": elapsed,
        "ok": delivered == effects and dict(seen) == expected,
    }


def extract(rev: str, into: Path) -> Path:
    """`bot/` as it was at `rev`, in a directory of its own."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev, "bot"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def run_child(code: Path, url: str, effects: int, lanes: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(code), url, str(effects), str(lanes)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


@contextlib.contextmanager
def databases(store: str, database_url: str | None) -> Iterator[Callable[[str], str]]:
    """A fresh database per name: a SQLite file, or one on PostgreSQL."""
    if store == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield lambda name: f"sqlite:///{tmp}/{name}.db"
        return
    if database_url:
        yield lambda name: database_url  # one given database, emptied by each run
        return
    sys.path.insert(0, str(ROOT))
    from tests.servers import PostgresServer

    with PostgresServer() as pg:
        yield pg.create_database


def bench(args: argparse.Namespace) -> int:
    broken = False
    stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    with tempfile.TemporaryDirectory() as tmp:
        codes = {"now": ROOT}
        if args.before:
            codes = {f"before ({args.before})": extract(args.before, Path(tmp)), **codes}
        for store in stores:
            results: dict[str, list[float]] = defaultdict(list)
            with databases(store, args.database_url) as database:
                for round_no in range(args.rounds):
                    order = list(codes) if round_no % 2 == 0 else list(reversed(codes))
                    for label in order:
                        name = f"outbox_{len(results[label])}_{'now' if label == 'now' else 'b'}"
                        url = database(f"{name}_{round_no}")
                        result = run_child(codes[label], url, args.effects, args.lanes)
                        results[label].append(result["rate"])
                        broken |= not result["ok"]
                        print(
                            f"{store:8} {label:18} round {round_no + 1}: {result['rate']:6.0f}"
                            f" effects/s ({result['elapsed']:.2f} s); once and in order:"
                            f" {result['ok']}",
                            flush=True,
                        )
            print(f"{store}: {args.effects} effects over {args.lanes} lanes, median of rounds:")
            medians = {label: statistics.median(rates) for label, rates in results.items()}
            for label, rate in medians.items():
                print(f"  {label:18} {rate:6.0f} effects/s")
            if len(medians) == 2:
                before = next(label for label in medians if label != "now")
                print(f"  now / before: {medians['now'] / medians[before]:.2f}x")
            print(flush=True)
    return 1 if broken else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        code, url, effects, lanes = argv[1:5]
        sys.path.insert(0, code)
        result = asyncio.run(measure(url, int(effects), int(lanes)))
        print(json.dumps(result))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--effects", type=int, default=10_000)
    parser.add_argument("--lanes", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--before", metavar="REV", help="also measure the code of this commit")
    parser.add_argument("--database-url", help="a PostgreSQL database to use (emptied)")
    args = parser.parse_args(argv)
    if args.database_url:
        args.store = "postgres"
    return bench(args)


if __name__ == "__main__":
    sys.exit(main())
