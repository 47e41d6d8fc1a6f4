"""The catch-up on a long incident: how long `/incident catchup` takes to gather and render.

    .venv/bin/python bench/catchup.py                      # SQLite, 5,000 timeline entries
    .venv/bin/python bench/catchup.py --store postgres     # a throwaway PostgreSQL
    .venv/bin/python bench/catchup.py --events 20000 --runs 500

One incident gets `--events` timeline entries (notes, updates, diagnoses), `--remediations`
remediation requests and `--items` action items, among `--others` other incidents' entries;
CatchupService.catchup (the store reads and the pure builder) and the Slack rendering then
run `--runs` times. Printed: median, p95 and worst of each, and the rendered size. Figures
only, no assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.clock import SystemClock  # noqa: E402
from bot.incidents import storage  # noqa: E402
from bot.incidents.catchup_service import CatchupService  # noqa: E402
from bot.models import Incident, Severity, Status, TimelineEvent  # noqa: E402
from bot.remediation import storage as requests  # noqa: E402
from bot.remediation.plans import Preview  # noqa: E402
from bot.reports import storage as reports  # noqa: E402
from bot.reports.models import NewActionItem  # noqa: E402
from bot.slack import catchup_text  # noqa: E402
from bot.store import create_store, migrate  # noqa: E402

KINDS = ("noted", "updated", "diagnosed", "assigned", "paged")


async def seed(url: str, args: argparse.Namespace) -> tuple[object, str]:
    store = create_store(url)
    await store.open()
    await migrate(store)
    now = SystemClock().now()
    target = ""
    async with store.transaction() as tx:
        for n in range(args.others + 1):
            incident = Incident(
                id=f"INC-20261205-{n + 1:03d}",
                title=f"Incident {n}",
                severity=Severity.P1,
                status=Status.IDENTIFIED,
                declared_by="U0ALICE",
                declared_at=now - timedelta(hours=3),
                updated_at=now,
                roles={"commander": "U0ALICE", "tech-lead": "U0BOB"},
                eta="in 30 min",
            )
            await storage.insert(tx, incident, day="20261205", seq=n + 1)
            target = incident.id
            count = args.events if n == args.others else args.events // 10
            for e in range(count):
                kind = KINDS[e % len(KINDS)]
                data = {"service": "checkout", "grade": "WARN", "grades": {"http": "WARN"}}
                await storage.add_timeline(
                    tx,
                    TimelineEvent(
                        incident_id=incident.id,
                        at=now - timedelta(seconds=count - e),
                        actor="U0BOB",
                        kind=kind,
                        text=f"Entry {e}: the checkout pods restart & recover",
                        data=data if kind == "diagnosed" else {},
                    ),
                )
        for r in range(args.remediations):
            await requests.insert(
                tx,
                action="kubernetes.restart",
                service="checkout",
                params={},
                risk="medium",
                preview=Preview("restart deployment checkout"),
                requested_by="U0BOB",
                now=now,
                expires_at=now + timedelta(minutes=15),
                approvals_needed=1,
                incident_id=target,
                channel_id=None,
                origin="command",
                request_key=f"bench-{r}",
            )
        for i in range(args.items):
            item = NewActionItem(f"Follow-up {i}", "U0BOB", now + timedelta(days=i))
            await reports.add_item(tx, target, item, "U0ALICE", now)
    return store, target


def figures(label: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return (
        f"{label}: median {statistics.median(ordered) * 1000:.2f} ms, "
        f"p95 {p95 * 1000:.2f} ms, worst {ordered[-1] * 1000:.2f} ms"
    )


async def measure(url: str, args: argparse.Namespace) -> None:
    store, target = await seed(url, args)
    service = CatchupService(store=store, clock=SystemClock())  # type: ignore[arg-type]
    gathered: list[float] = []
    rendered: list[float] = []
    text = ""
    for _ in range(args.runs):
        started = time.perf_counter()
        caught = await service.catchup(target)
        gathered.append(time.perf_counter() - started)
        started = time.perf_counter()
        text = catchup_text.catchup_text(caught)
        rendered.append(time.perf_counter() - started)
    await store.close()  # type: ignore[attr-defined]
    print(
        f"{args.store}: one incident of {args.events} timeline entries, {args.remediations} "
        f"remediations, {args.items} action items, among {args.others} others"
    )
    print(figures("  gather (store + builder)", gathered))
    print(figures("  render (Slack text)", rendered))
    print(f"  rendered: {len(text.splitlines())} lines, {len(text)} characters")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--remediations", type=int, default=40)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--others", type=int, default=200)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.store == "sqlite":
            await measure(f"sqlite:///{folder}/bench.db", args)
            return
        from tests.servers import PostgresServer

        with PostgresServer() as server:
            await measure(server.create_database("bench"), args)


if __name__ == "__main__":
    asyncio.run(main())
