"""Escalation under load: 10,000 open incidents' reminders, how late they fire, what it costs.

    .venv/bin/python bench/escalation_load.py                       # SQLite, 10,000 incidents
    .venv/bin/python bench/escalation_load.py --store postgres      # a throwaway PostgreSQL
    .venv/bin/python bench/escalation_load.py --incidents 2000 --window 10 --processes 2

Each open incident gets the reminders a P1 has after its level-1 page: a level-2 page and an
acknowledgement breach due inside the measured window, a resolution breach and an update
reminder hours away. The reminder engine (ReminderEngine with its APScheduler and sweep,
the outbox dispatcher delivering to a notifier that only counts) then runs on the real clock
until every reminder of the window has fired. Printed: how late they fired (fired_at - due_at:
median, p95, p99, worst), throughput, the process's RSS, and, in a second phase with
tracemalloc, the memory the scheduler holds for its jobs with the default lookahead and with
every pending reminder held as a job. Figures only, no assertions: timings on a shared machine
make poor assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.clock import SystemClock  # noqa: E402
from bot.models import Incident  # noqa: E402
from bot.notify import MessageRef, Page  # noqa: E402
from bot.policy import load_policy  # noqa: E402
from bot.reminders import ReminderEngine  # noqa: E402
from bot.services import Services, build_services  # noqa: E402
from bot.store import Store, create_store, migrate  # noqa: E402

FAR = timedelta(hours=6)
GOAL_P99_S = 1.0


class CountingNotifier:
    """The Notifier port doing no I/O: the figures are the engine's, not Slack's."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> MessageRef:
        self.calls[name] = self.calls.get(name, 0) + 1
        return MessageRef(channel="C0BENCH", ts=f"{time.time():.6f}")

    async def announce_incident(self, incident: Incident, **_: Any) -> MessageRef:
        return self._count("announce")

    async def report_failure(self, incident: Incident, **_: Any) -> None:
        self._count("report_failure")

    async def page(self, incident: Incident, page: Page, *, channel: str) -> MessageRef:
        return self._count("page")

    async def page_user(self, incident: Incident, page: Page, **_: Any) -> MessageRef:
        return self._count("page_user")

    async def warn_breach(self, incident: Incident, **_: Any) -> MessageRef:
        return self._count("warn_breach")

    async def remind(self, incident: Incident, **_: Any) -> MessageRef:
        return self._count("remind")

    def __getattr__(self, name: str) -> Any:
        # Lifecycle notifications (war rooms, cards) are not part of this benchmark.
        async def anything(*_: Any, **__: Any) -> MessageRef:
            return self._count(name)

        return anything


async def seed(store: Store, incidents: int, start: datetime, window: float) -> None:
    """Open P1 incidents, level 1 already paged; their reminders spread over the window."""
    now = time.time()
    batch = 500
    async with store.transaction() as tx:
        for first in range(0, incidents, batch):
            numbers = range(first, min(first + batch, incidents))
            await tx.execute(
                "INSERT INTO incidents (id, day, seq, title, severity, status, declared_by,"
                " declared_at, updated_at, roles, next_update_due) VALUES "
                + ", ".join(
                    "(?, ?, ?, ?, 'P1', 'investigating', 'U0BENCH', ?, ?, ?, ?)" for _ in numbers
                ),
                [
                    value
                    for n in numbers
                    for value in (
                        f"INC-20261127-{n + 1:05d}",
                        "20261127",
                        n + 1,
                        f"Bench incident {n}",
                        now,
                        now,
                        json.dumps({"commander": "U0BENCH"}),
                        (start + FAR).timestamp(),
                    )
                ],
            )
            await tx.execute(
                "INSERT INTO escalations (incident_id, plan, severity, anchor_at, level,"
                " updated_at) VALUES " + ", ".join("(?, 1, 'P1', ?, 1, ?)" for _ in numbers),
                [v for n in numbers for v in (f"INC-20261127-{n + 1:05d}", now, now)],
            )
            rows = []
            for n in numbers:
                due = start.timestamp() + window * n / max(1, incidents - 1)
                incident_id = f"INC-20261127-{n + 1:05d}"
                rows += [
                    (incident_id, "page", 2, due, '["U0LEAD", "S0SRE"]'),
                    (incident_id, "ack_breach", 0, due + 0.5, "[]"),
                    (incident_id, "resolve_breach", 0, (start + FAR).timestamp(), "[]"),
                    (incident_id, "update_due", 0, (start + FAR).timestamp(), "[]"),
                ]
            await tx.execute(
                "INSERT INTO reminders (incident_id, plan, kind, level, due_at, notify,"
                " created_at) VALUES " + ", ".join("(?, 1, ?, ?, ?, ?, ?)" for _ in rows),
                [v for row in rows for v in (*row, now)],
            )


def build(url: str, notifier: CountingNotifier, sweep: float) -> Services:
    return build_services(
        policy=load_policy(None),
        store=create_store(url),
        notifier=notifier,
        clock=SystemClock(),
        escalation_sweep_interval=sweep,
    )


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


async def engine_process(url: str, sweep: float) -> None:
    """One bot process's engine (scheduler, sweep, outbox) until SIGTERM; stats on stdout."""
    notifier = CountingNotifier()
    services = build(url, notifier, sweep)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    gc.collect()
    rss_before = rss_mb()
    await services.start()
    peak_rss, peak_jobs = rss_before, 0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.25)
        scheduler = services.reminders.scheduler
        peak_jobs = max(peak_jobs, len(scheduler.get_jobs()) - 1 if scheduler else 0)
        peak_rss = max(peak_rss, rss_mb())
    await services.close()
    stats = {"rss_before": rss_before, "rss_peak": peak_rss, "jobs_peak": peak_jobs}
    print(json.dumps(stats | {"calls": notifier.calls}), flush=True)


async def count_rows(store: Store, sql: str, params: tuple[Any, ...] = ()) -> int:
    async with store.transaction() as tx:
        row = await tx.fetchone(sql, params)
    return int(row["n"]) if row else 0


async def lateness_phase(args: argparse.Namespace, url: str) -> None:
    setup = create_store(url)
    await setup.open()
    await migrate(setup)
    start = datetime.now(UTC) + timedelta(seconds=args.lead)
    began = time.perf_counter()
    await seed(setup, args.incidents, start, args.window)
    seeded = time.perf_counter() - began
    window_reminders = 2 * args.incidents
    window_end = (start + timedelta(seconds=args.window + 1)).timestamp()
    print(
        f"seeded {args.incidents} open incidents, {4 * args.incidents} reminders "
        f"({window_reminders} due over {args.window:.0f} s starting in "
        f"{(start - datetime.now(UTC)).total_seconds():.1f} s) in {seeded:.1f} s"
    )

    # Each engine is a process of its own, as bot replicas are; this one only watches.
    # BENCH_CPROFILE=PREFIX: a CPU profile of each engine process, written when it stops.
    profile = os.environ.get("BENCH_CPROFILE")
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            *(["-m", "cProfile", "-o", f"{profile}-{n}.prof"] if profile else []),
            __file__,
            "--engine",
            url,
            "--sweep",
            str(args.sweep),
            stdout=asyncio.subprocess.PIPE,
        )
        for n in range(args.processes)
    ]
    deadline = time.monotonic() + args.lead + args.window + args.timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        fired = await count_rows(
            setup,
            "SELECT COUNT(*) AS n FROM reminders WHERE status = 'fired' AND due_at <= ?",
            (window_end,),
        )
        if fired >= window_reminders:
            break
    last_fired = time.monotonic()
    while time.monotonic() < deadline:
        undelivered = await count_rows(
            setup,
            "SELECT COUNT(*) AS n FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL",
        )
        if undelivered == 0:
            break
        await asyncio.sleep(0.25)
    delivered = time.monotonic() - last_fired
    stats = []
    for child in children:
        child.send_signal(signal.SIGTERM)
        out, _ = await child.communicate()
        stats.append(json.loads(out.decode().strip().splitlines()[-1]))
    async with setup.transaction() as tx:
        rows = await tx.fetchall(
            "SELECT fired_at - due_at AS late, claimed_by FROM reminders"
            " WHERE status = 'fired' AND due_at <= ?",
            (window_end,),
        )
        twice = await tx.fetchone(
            "SELECT COUNT(*) AS n FROM (SELECT incident_id, kind, level FROM reminders"
            " WHERE status = 'fired' GROUP BY incident_id, kind, level HAVING COUNT(*) > 1) t"
        )
    await setup.close()

    late = sorted(float(r["late"]) for r in rows)
    owners = {str(r["claimed_by"]) for r in rows}

    def pct(q: float) -> float:
        return late[min(len(late) - 1, int(q * len(late)))]

    repeated = int(twice["n"]) if twice else -1
    print(
        f"\nfired {len(late)} of {window_reminders} reminders due in the window "
        f"({args.processes} process(es); fired by {len(owners)}; fired twice: {repeated})"
    )
    if late:
        print(
            f"lateness  median {statistics.median(late) * 1000:8.1f} ms   "
            f"p95 {pct(0.95) * 1000:8.1f} ms   p99 {pct(0.99) * 1000:8.1f} ms   "
            f"worst {late[-1] * 1000:8.1f} ms   (earliest {late[0] * 1000:.1f} ms)"
        )
        print(f"load      {len(late) / args.window:8.0f} reminders/s due over the window")
        verdict = "meets" if pct(0.99) < GOAL_P99_S and repeated == 0 else "misses"
        print(
            f"goal: every reminder once, p99 lateness under {GOAL_P99_S:g} s: {verdict} it"
            f" (p99 {pct(0.99):.2f} s, fired twice {repeated})"
        )
    calls: dict[str, int] = {}
    for stat in stats:
        for name, number in stat["calls"].items():
            calls[name] = calls.get(name, 0) + number
    print(f"outbox drained {delivered:.1f} s after the last firing; notifier calls {calls}")
    span = args.window + delivered
    print(f"deliveries {sum(calls.values()) / span:.0f} a second over the window and the drain")
    for number, stat in enumerate(stats, start=1):
        print(
            f"process {number} RSS {stat['rss_before']:6.1f} MB at start, "
            f"peak {stat['rss_peak']:6.1f} MB; at most {stat['jobs_peak']} scheduler jobs"
        )


async def held_jobs(engine: ReminderEngine) -> int:
    """Jobs the scheduler holds once its first sweep has finished."""
    counts: list[int] = []
    while len(counts) < 4 or len(set(counts[-4:])) > 1 or engine.scheduling.sweeping:
        await asyncio.sleep(0.05)
        scheduler = engine.scheduler
        counts.append(len(scheduler.get_jobs()) if scheduler else 0)
    return counts[-1] - 1  # without the sweep's own job


async def memory_phase(args: argparse.Namespace, url: str) -> None:
    """What the scheduler holds: the default lookahead against every reminder as a job."""
    store = create_store(url)
    await store.open()
    await migrate(store)
    # Every reminder at least a minute away: the default lookahead holds none of them yet.
    await seed(store, args.incidents, datetime.now(UTC) + timedelta(seconds=60), 120)
    await store.close()
    print()
    for label, lookahead in (("default lookahead", None), ("every reminder a job", 1e9)):
        services = build(url, CountingNotifier(), args.sweep)
        await services.store.open()
        engine: ReminderEngine = services.reminders
        if lookahead is not None:
            engine.scheduling.lookahead = lookahead
        gc.collect()
        tracemalloc.start()
        base, _ = tracemalloc.get_traced_memory()
        await engine.start()
        jobs = await held_jobs(engine)
        gc.collect()
        held, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        await engine.stop()
        await services.store.close()
        per_job = f"{(held - base) / max(1, jobs) / 1024:.2f} KiB a job" if jobs else "no jobs"
        print(
            f"scheduler, {label} ({engine.scheduling.lookahead:.0f} s): {jobs:6d} jobs held, "
            f"{(held - base) / 2**20:6.2f} MB ({per_job}; peak {(peak - base) / 2**20:.1f} MB)"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--window", type=float, default=60.0, help="seconds the dues spread over")
    parser.add_argument("--lead", type=float, default=8.0, help="seconds until the first is due")
    parser.add_argument("--sweep", type=float, default=5.0, help="ESCALATION_SWEEP_SECONDS")
    parser.add_argument("--processes", type=int, default=1, help="bot processes on the store")
    parser.add_argument("--engine", metavar="URL", help=argparse.SUPPRESS)  # a child process
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.engine:
        await engine_process(args.engine, args.sweep)
        return

    with tempfile.TemporaryDirectory() as folder:
        if args.store == "sqlite":
            url = f"sqlite:///{folder}/bench.db"
            await lateness_phase(args, url)
            await memory_phase(args, f"sqlite:///{folder}/memory.db")
            return
        from tests.servers import PostgresServer

        with PostgresServer(max_connections=300) as server:
            await lateness_phase(args, server.create_database("bench"))
            await memory_phase(args, server.create_database("memory"))


if __name__ == "__main__":
    asyncio.run(main())
