"""A burst of declarations through the real app: how many are served, and how fast.

    .venv/bin/python bench/declare_burst.py [--count 2000] [--concurrency 50]
        [--store sqlite|postgres|both] [--database-url URL] [--baseline]
        [--replicas N [--no-redis]] [--pace-scale 100] [--round-trips]

The real bot (`create_bot` + `Bot.start` on a free loopback port, its outbox dispatcher and
escalation engine running) answers correctly signed `/incident declare P2 ...` slash commands
sent over HTTP, at most `--concurrency` in flight, `--count` in all. Its Web API and every
response_url are the Slack double's. Printed per store: how many were acknowledged, created
(rows in `incidents`), refused (any other answer on the response_url, by kind) and announced
(announcement posts the double recorded), and declarations per second end to end: from the
first request sent to the last answer on a response_url, and to the last announcement.

`--round-trips` only counts the round trips of one P2 declaration's transaction on a
throwaway PostgreSQL (libpq's protocol trace of a warm connection) and prints the figure.

`--replicas N` runs the bot as N `chatops-bot run` processes behind a round-robin front, on
PostgreSQL and a throwaway Redis (bench/cluster.py), as a Deployment runs it. With
`--replicas 1 --no-redis` the one process has no REDIS_URL, as a single-process deployment
runs it: its de-duplication and Slack pace are kept in the process, 4 round trips fewer a
declaration.

`--baseline` runs PostgreSQL a second time, first, with the audit chain as it was before issue
7 (the chain head locked from the first audit entry of a transaction until its commit) and the
old 3 s pool wait: the figures the issue reported, measured in the same run.
Figures only, no assertions: see bench/README.md for how to read them.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import logging
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cluster import (  # noqa: E402
    BOT_TOKEN,
    PACE_SCALE,
    SIGNING_SECRET,
    cluster,
    servers,
    start_in_process,
)
from bot import audit  # noqa: E402
from bot.app import build_client  # noqa: E402
from bot.audit import AuditRecord  # noqa: E402
from bot.console.workspace import RecordedCall, RecordedResponse, SlackDouble  # noqa: E402
from bot.incidents.schemas import DeclareIncident  # noqa: E402
from bot.models import Actor, Severity  # noqa: E402
from bot.policy import load_policy  # noqa: E402
from bot.services import build_services  # noqa: E402
from bot.slack.limits import SlackLimits  # noqa: E402
from bot.slack.notifier import SlackNotifier  # noqa: E402
from bot.slack.requests import SlackRequestSender, slash_command_body  # noqa: E402
from bot.store import Tx, create_store, for_update  # noqa: E402

GOAL_PER_SECOND = 500
HOT_PATHS_PER_SECOND = 300  # issue 19's goals, on PostgreSQL
HOT_PATHS_CPU_MS = 5.0
CHANNEL = "C0BENCH"
USER = "U0BENCH"


@dataclass
class Tally:
    """What the double saw: answers on response_urls and announcements."""

    announce_channel: str
    answers: collections.Counter[str] = field(default_factory=collections.Counter)
    # Each request's answers, by response_url: to tell a refusal that was not one.
    answers_by_url: dict[str, list[str]] = field(default_factory=dict)
    answered: int = 0
    announced: int = 0
    announcement_texts: collections.Counter[str] = field(default_factory=collections.Counter)
    last_answer_at: float = 0.0
    last_announcement_at: float = 0.0
    methods: collections.Counter[str] = field(default_factory=collections.Counter)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, item: RecordedCall | RecordedResponse) -> None:
        now = time.perf_counter()
        if isinstance(item, RecordedResponse):
            self.answered += 1
            kind = kind_of(str(item.payload.get("text", "")))
            self.answers[kind] += 1
            self.answers_by_url.setdefault(item.url_id, []).append(kind)
            self.last_answer_at = now
            self.changed.set()
            return
        self.methods[item.method] += 1
        if (
            item.method == "chat.postMessage"
            and item.ok
            and item.params.get("channel") == self.announce_channel
            # Pages of P2 incidents go to the same channel: only announcements count here.
            and str(item.params.get("text", "")).startswith("Incident Update:")
        ):
            self.announced += 1
            self.announcement_texts[str(item.params.get("text", ""))] += 1
            self.last_announcement_at = now
            self.changed.set()

    async def wait(self, answered: int, announced: int, within: float) -> bool:
        """Until `answered` answers and `announced` announcements; False when time ran out."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while self.answered < answered or self.announced < announced:
                    self.changed.clear()
                    await self.changed.wait()
                return True
        return False


def kind_of(text: str) -> str:
    """Sort an answer: created, or which refusal (or neither: it went through, or nobody
    can tell)."""
    if text.startswith("Declared"):
        return "created"
    if text.startswith(":white_check_mark: That went through"):
        return "went through, details unconfirmed"
    if text.startswith(":warning: I lost track of your request"):
        return "outcome unknown"
    if "can't reach my database" in text:
        return "refused: database unreachable"
    if text.startswith(":hourglass:"):
        return "refused: busy (waited past DATABASE_QUEUE_SECONDS)"
    return "other: " + text[:60]


async def legacy_append(tx: Tx, at: Any, record: AuditRecord) -> None:
    """The audit append before issue 7: the head row locked until the transaction commits."""
    head = await tx.fetchone("SELECT seq, hash FROM audit_head WHERE id = 1" + for_update(tx))
    assert head is not None
    seq = int(head["seq"]) + 1
    timestamp = at.timestamp()
    args_json = audit._args_json(record.args)
    digest = audit._digest(head["hash"], seq, timestamp, record, args_json)
    await tx.execute(
        "INSERT INTO audit_log (seq, at, actor, action, target, args, outcome, incident_id,"
        " request_id, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            seq,
            timestamp,
            record.actor,
            record.action,
            record.target,
            args_json,
            record.outcome,
            record.incident_id,
            record.request_id,
            head["hash"],
            digest,
        ),
    )
    await tx.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (seq, digest))


@contextlib.contextmanager
def legacy_audit() -> Iterator[None]:
    original = audit.append
    audit.append = legacy_append  # type: ignore[assignment]
    try:
        yield
    finally:
        audit.append = original


def cpu_seconds(process: psutil.Process | None) -> float:
    """CPU time of a process and its children, the live ones and those already reaped."""
    if process is None:
        return 0.0
    times = process.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            child_times = child.cpu_times()
            total += child_times.user + child_times.system
    return total


@dataclass
class Outcome:
    label: str
    count: int
    acked: int
    acked_after: float
    tally: Tally
    created: int
    finished: bool
    started: float
    bot_cpu: float  # this process: the bot (in-process), the Slack double, the HTTP client
    # Requests told that nothing was changed whose incident exists.
    refused_yet_created: int
    database_cpu: float  # the PostgreSQL server, when the bench started it
    replicas_cpu: float | None = None  # the bot processes, with --replicas
    # The bot processes' CPU until the last answer (the declarations' own path, and whatever
    # outbox deliveries ran beside it), read from samples taken every 20 ms.
    replicas_cpu_answering: float | None = None


async def burst(
    label: str,
    database_url: str,
    count: int,
    concurrency: int,
    database_process: psutil.Process | None = None,
    *,
    pace_scale: float = PACE_SCALE,
    replicas: int = 0,
    redis_url: str | None = None,
    home_viewers: int = 0,
    **store: Any,
) -> Outcome:
    policy = load_policy(None)
    tally = Tally(policy.announce_channel)
    async with AsyncExitStack() as stack:
        # Slack's limits enforced at the pace the bot keeps (a 429 would show as a retry).
        double = SlackDouble(
            bot_token=BOT_TOKEN, on_event=tally, rate_limits=SlackLimits(scale=pace_scale)
        )
        await double.start()
        stack.push_async_callback(double.stop)
        double.add_channel(CHANNEL, "bench")
        bot_processes: list[psutil.Process] = []
        if replicas:
            bots = await stack.enter_async_context(
                cluster(
                    "bot",
                    replicas,
                    double,
                    database_url=database_url,
                    redis_url=redis_url,
                    pace_scale=pace_scale,
                )
            )
            url = bots.url
            bot_processes = [psutil.Process(pid) for pid in bots.pids]
        else:
            url = await start_in_process(
                stack,
                double,
                database_url,
                pace_scale=pace_scale,
                redis_url=redis_url,
                policy=policy,
                **store,
            )
        if home_viewers:  # people who opened the App Home: each change refreshes theirs
            seeded = create_store(database_url)
            await seeded.open()
            async with seeded.transaction() as tx:
                for n in range(home_viewers):
                    await tx.execute(
                        "INSERT INTO home_viewers (user_id, opened_at) VALUES (?, 0)",
                        (f"U0VIEW{n:04d}",),
                    )
            await seeded.close()
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        stack.push_async_callback(session.close)
        sender = SlackRequestSender(url, SIGNING_SECRET, session=session)
        titles = {
            double.new_response_url(channel=CHANNEL, user_id=USER): f"Burst {label} declaration {n}"
            for n in range(count)
        }
        bodies = [
            slash_command_body(
                text=f"declare P2 {title}",
                user_id=USER,
                channel_id=CHANNEL,
                response_url=response_url,
            )
            for response_url, title in titles.items()
        ]
        gate = asyncio.Semaphore(concurrency)
        acked = 0

        async def send(body: Any) -> None:
            nonlocal acked
            async with gate:
                response = await sender.send(body)
            if response.status == 200:
                acked += 1

        started = time.perf_counter()
        cpu_before = (
            time.process_time(),
            cpu_seconds(database_process),
            sum(cpu_seconds(p) for p in bot_processes),
            sum(sum(p.cpu_times()[:2]) for p in bot_processes),
        )
        samples: list[tuple[float, float]] = []

        async def sample() -> None:
            # Until the last answer only, and the processes' own times (no walk of their
            # children): the samples cost this process as little as can be.
            while tally.answered < count:
                cpu = sum(sum(p.cpu_times()[:2]) for p in bot_processes)
                samples.append((time.perf_counter(), cpu - cpu_before[3]))
                await asyncio.sleep(0.02)

        sampler = asyncio.create_task(sample()) if bot_processes else None
        await asyncio.gather(*(send(body) for body in bodies))
        acked_after = time.perf_counter() - started
        # Every acked declaration gets one answer; every created one, one announcement.
        await tally.wait(answered=acked, announced=0, within=max(60.0, count / 10))
        finished = await tally.wait(
            answered=acked, announced=tally.answers["created"], within=max(60.0, count / 10)
        )
        if sampler is not None:
            sampler.cancel()
        bench_cpu = time.process_time() - cpu_before[0]
        answering = next(
            (cpu for at, cpu in samples if at >= tally.last_answer_at),
            samples[-1][1] if samples else None,
        )
        database_cpu = cpu_seconds(database_process) - cpu_before[1]
        replicas_cpu = sum(cpu_seconds(p) for p in bot_processes) - cpu_before[2]
        counter = create_store(database_url)
        await counter.open()
        try:
            async with counter.transaction() as tx:
                rows = await tx.fetchall("SELECT title FROM incidents")
        finally:
            await counter.close()
        created = len(rows)
        # An incident whose transaction committed after the count still got its announcement.
        announced = {
            text.removeprefix("Incident Update: ").split(" | ")[0]
            for text in tally.announcement_texts
        }
        existing = {str(r["title"]) for r in rows} | announced
        refused_yet_created = sum(
            1
            for response_url, title in titles.items()
            if title in existing
            and any(
                kind.startswith(("refused", "other"))  # every refusal says "nothing changed"
                for kind in tally.answers_by_url.get(response_url.rsplit("/", 1)[-1], [])
            )
        )
        return Outcome(
            label,
            count,
            acked,
            acked_after,
            tally,
            created,
            finished,
            started,
            bench_cpu,
            refused_yet_created,
            database_cpu,
            replicas_cpu if replicas else None,
            answering if replicas else None,
        )


def report(outcome: Outcome) -> None:
    tally = outcome.tally
    refused = sum(n for kind, n in tally.answers.items() if kind.startswith(("refused", "other")))
    print(f"{outcome.label}:")
    print(
        f"  sent {outcome.count}, acked {outcome.acked} in {outcome.acked_after:.2f} s;"
        f" created {outcome.created}, refused {refused}, announced {tally.announced}"
    )
    for kind, n in sorted(tally.answers.items()):
        if kind != "created":
            print(f"    {n} x {kind}")
    print(f"  told nothing changed, yet created: {outcome.refused_yet_created}")
    twice = {text: n for text, n in tally.announcement_texts.items() if n > 1}
    print(f"  announced more than once: {len(twice)}")
    for text, n in list(twice.items())[:3]:
        print(f"    {n} x {text[:100]!r}")
    if outcome.created and tally.methods:
        calls = ", ".join(
            f"{method} {n / outcome.created:.2f}" for method, n in tally.methods.most_common()
        )
        print(f"  Slack Web API calls per declaration: {calls}")
    if not outcome.finished:
        print("  (stopped waiting: not every answer or announcement arrived)")
    answered_s = tally.last_answer_at - outcome.started
    announced_s = tally.last_announcement_at - outcome.started
    if outcome.created and answered_s > 0:
        print(
            f"  last answer after {answered_s:.2f} s: {outcome.created / answered_s:.0f}"
            " declarations a second, end to end"
        )
    if tally.announced and announced_s > 0:
        print(
            f"  last announcement after {announced_s:.2f} s:"
            f" {tally.announced / announced_s:.0f} announced a second"
        )
    span = max(answered_s, announced_s, 1e-9)
    if outcome.created and outcome.replicas_cpu is not None:
        per = 1000 / outcome.created
        print(
            f"  CPU per declaration: bot processes {outcome.replicas_cpu * per:.1f} ms,"
            f" PostgreSQL {outcome.database_cpu * per:.1f} ms, this process (double, front,"
            f" client) {outcome.bot_cpu * per:.1f} ms; machine busy"
            f" {(outcome.replicas_cpu + outcome.database_cpu + outcome.bot_cpu) / span:.0%}"
            f" of one core ({psutil.cpu_count()} cores)"
        )
        if outcome.replicas_cpu_answering is not None:
            print(
                "    of which until the last answer (declaring, and deliveries beside it):"
                f" {outcome.replicas_cpu_answering * per:.1f} ms; after it (the outbox's"
                f" tail): {(outcome.replicas_cpu - outcome.replicas_cpu_answering) * per:.1f} ms"
            )
    elif outcome.created:
        per = 1000 / outcome.created
        line = f"  CPU per declaration: bot process {outcome.bot_cpu * per:.1f} ms"
        if outcome.database_cpu:
            line += f", PostgreSQL {outcome.database_cpu * per:.1f} ms"
        print(f"{line} (bot process busy {outcome.bot_cpu / span:.0%} of the run)")
    if outcome.created and answered_s > 0:
        rate = outcome.created / answered_s
        verdict = "meets" if rate >= GOAL_PER_SECOND and not refused else "misses"
        print(
            f"  goal: {GOAL_PER_SECOND} declarations a second end to end, none refused:"
            f" {verdict} it ({rate:.0f} a second, {refused} refused)"
        )
        if outcome.replicas_cpu is not None:
            cpu_ms = outcome.replicas_cpu * 1000 / outcome.created
            met = rate >= HOT_PATHS_PER_SECOND and cpu_ms <= HOT_PATHS_CPU_MS
            print(
                f"  issue 19: at least {HOT_PATHS_PER_SECOND} a second and at most"
                f" {HOT_PATHS_CPU_MS:g} ms of bot CPU per declaration:"
                f" {'meets' if met else 'misses'} it ({rate:.0f} a second, {cpu_ms:.1f} ms)"
            )


async def statements_under_head_lock(folder: str, legacy: bool) -> tuple[int, int]:
    """How many statements one P2 declaration's transaction runs (its COMMIT included), and
    how many of them while it holds the audit head lock, from SQLite's statement trace."""
    store = create_store(f"sqlite:///{folder}/trace-{legacy}.db")
    services = build_services(
        policy=load_policy(None),
        store=store,
        notifier=SlackNotifier(build_client(BOT_TOKEN, "http://127.0.0.1:9/api/")),  # unused
    )
    await services.start(run_dispatcher=False, run_scheduler=False)
    try:
        trace: list[str] = []
        store._conn.set_trace_callback(trace.append)  # type: ignore[attr-defined]
        with legacy_audit() if legacy else contextlib.nullcontext():
            await services.incidents.declare(
                DeclareIncident(severity=Severity.P2, title="Traced"),
                Actor(user_id=USER),
                request_id="traced",
            )
        store._conn.set_trace_callback(None)  # type: ignore[attr-defined]
    finally:
        await services.close()
    begin = next(n for n, sql in enumerate(trace) if sql.startswith("BEGIN"))
    locked = next(n for n, sql in enumerate(trace) if "FROM audit_head" in sql)
    commit = next(n for n, sql in enumerate(trace) if sql == "COMMIT")
    return commit - begin, commit - locked + 1


async def round_trips(database_url: str) -> int:
    """Round trips of one P2 declaration's transaction on PostgreSQL, on a warm connection
    (statements already prepared): the messages after which the client waits for the server
    (Sync, simple Query), counted in libpq's protocol trace of the store's one connection."""
    from psycopg import pq

    store = create_store(database_url, pool_size=1)
    services = build_services(
        policy=load_policy(None),
        store=store,
        notifier=SlackNotifier(build_client(BOT_TOKEN, "http://127.0.0.1:9/api/")),  # unused
    )
    await services.start(run_dispatcher=False, run_scheduler=False)

    async def declare(request_id: str) -> None:
        await services.incidents.declare(
            DeclareIncident(severity=Severity.P2, title="Traced"),
            Actor(user_id=USER),
            request_id=request_id,
        )

    try:
        for n in range(8):  # psycopg prepares a statement on its fifth run
            await declare(f"warm-{n}")
        conn = await store._pool.getconn()  # type: ignore[attr-defined]
        await store._pool.putconn(conn)  # type: ignore[attr-defined]
        with tempfile.TemporaryFile("w+") as trace:
            conn.pgconn.trace(trace.fileno())
            conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
            await declare("traced")
            conn.pgconn.untrace()
            trace.seek(0)
            sent = [line.split("\t") for line in trace.read().splitlines()]
    finally:
        await services.close()
    return sum(1 for line in sent if line[0] == "F" and line[2] in ("Sync", "Query"))


@contextlib.asynccontextmanager
async def postgres(
    database_url: str | None,
) -> AsyncIterator[tuple[Any, psutil.Process | None]]:
    """Databases on the given server, or on a throwaway one (tests/servers.py, fsync off),
    with the throwaway server's process to measure its CPU."""
    if database_url:
        yield (lambda name: database_url), None
        return
    from tests.servers import PostgresServer

    with PostgresServer(max_connections=100) as server:
        assert server._proc is not None
        yield server.create_database, psutil.Process(server._proc.pid)


async def run(args: argparse.Namespace) -> None:
    if args.log:  # the bot's warnings and errors, to see why a request was refused
        logging.basicConfig(filename=args.log, level=logging.WARNING)
    else:
        logging.basicConfig(level=logging.CRITICAL)  # refusals are counted, not logged
    if args.round_trips:
        async with postgres(args.database_url) as (database, _):
            trips = await round_trips(database("trips"))
        print(f"round trips of one P2 declaration's transaction on PostgreSQL: {trips}")
        return
    print(f"declare burst: {args.count} signed /incident declare P2, {args.concurrency} in flight")
    if args.replicas:
        if args.no_redis and args.replicas != 1:
            raise SystemExit("--no-redis: one process only (replicas share their pace in Redis)")
        with servers(args.database_url, redis=not args.no_redis) as (database, redis_url, pid):
            shared = "PostgreSQL" if args.no_redis else "PostgreSQL + Redis"
            # The same database for both runs would mix their counts: one run on a given one.
            for replicas in [args.replicas] if args.database_url else sorted({1, args.replicas}):
                outcome = await burst(
                    f"{shared}, {replicas} replica(s) behind a round-robin front",
                    database(f"burst{replicas}"),
                    args.count,
                    args.concurrency,
                    psutil.Process(pid) if pid else None,
                    pace_scale=args.pace_scale,
                    replicas=replicas,
                    redis_url=redis_url,
                    home_viewers=args.home_viewers,
                )
                report(outcome)
        return
    with tempfile.TemporaryDirectory(prefix="declare-burst-") as folder:
        if args.baseline:
            for legacy, label in ((True, "before issue 7"), (False, "now")):
                statements, locked = await statements_under_head_lock(folder, legacy)
                print(
                    f"audit head lock, {label}: held through {locked} of the {statements}"
                    " statements of a declaration (lock and COMMIT included)"
                )
        if args.store in ("sqlite", "both"):
            outcome = await burst(
                "SQLite",
                f"sqlite:///{folder}/burst.db",
                args.count,
                args.concurrency,
                pace_scale=args.pace_scale,
            )
            report(outcome)
        if args.store in ("postgres", "both"):
            async with postgres(args.database_url) as (database, server):
                if args.baseline:
                    with legacy_audit():
                        outcome = await burst(
                            "PostgreSQL, before issue 7 (head locked to commit, 3 s pool wait)",
                            database("baseline"),
                            args.count,
                            args.concurrency,
                            server,
                            pace_scale=args.pace_scale,
                            DATABASE_QUEUE_SECONDS=3.0,
                        )
                    report(outcome)
                outcome = await burst(
                    "PostgreSQL",
                    database("burst"),
                    args.count,
                    args.concurrency,
                    server,
                    pace_scale=args.pace_scale,
                )
                report(outcome)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="declarations in all")
    parser.add_argument("--concurrency", type=int, default=50, help="requests in flight")
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--database-url", help="a PostgreSQL database to use (default: a throwaway server)"
    )
    parser.add_argument(
        "--baseline", action="store_true", help="also measure the audit path before issue 7"
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=0,
        help="N bot processes behind a round-robin front, PostgreSQL and Redis (and 1, first,"
        " as the baseline)",
    )
    parser.add_argument(
        "--pace-scale",
        type=float,
        default=PACE_SCALE,
        help="Slack's clock this many times faster, for the double and the bot alike",
    )
    parser.add_argument(
        "--no-redis",
        action="store_true",
        help="with --replicas 1: the process without REDIS_URL, as a single-process"
        " deployment runs it (de-duplication and pace in the process)",
    )
    parser.add_argument("--log", help="write the bot's warnings and errors to this file")
    parser.add_argument(
        "--home-viewers",
        type=int,
        default=0,
        help="with --replicas: people who have opened the App Home (each change refreshes it)",
    )
    parser.add_argument(
        "--round-trips",
        action="store_true",
        help="only count the round trips of one declaration's transaction (libpq's trace)",
    )
    args = parser.parse_args(argv)
    if args.baseline and args.database_url:
        parser.error("--baseline needs two empty databases: use the throwaway server")
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
