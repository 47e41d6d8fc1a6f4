"""An alert storm against the bot's replicas, posted as Alertmanager posts it.

    .venv/bin/python bench/alert_storm.py [--alerts 5000] [--services 20] [--waves 10]
        [--replicas 2] [--wave-interval 0.5] [--pace-scale 100] [--max-incidents 5]
        [--database-url URL]

`--replicas` `chatops-bot run` processes on PostgreSQL and Redis (bench/cluster.py) with an
`alerts:` policy naming `--services` catalogued services (each with an HTTP check against a
health endpoint this script serves, so every incident is diagnosed). The storm: `--alerts`
distinct alerts spread evenly over the services arrive in `--waves` waves; at each wave every
service's group gains its share of new alerts and, as Alertmanager does with `group_by:
[service]`, the whole group so far is posted (so later posts resend the earlier alerts), all
services at once, each post to the next replica, with the bearer token. Printed:

- acks: each post's HTTP round trip (p50, p99, max): the bot records before it answers;
- alerts recorded (rows in `alerts`) and per second, from the first post to the last alert,
  and when the last was decided (its incident opened or joined, after the answer);
- incidents opened (goal: one per service up to `--max-incidents`, the policy's storm
  guard, then one storm incident for the rest) and what the posts' answers counted by outcome;
- Slack messages: every chat.postMessage, and those that list alerts (goal: tens);
- the time until every alert was recorded and until the outbox was empty.

Figures only, no assertions: see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cluster import BOT_TOKEN, PACE_SCALE, cluster, serve, servers  # noqa: E402
from bot.console.workspace import RecordedCall, RecordedResponse, SlackDouble  # noqa: E402
from bot.slack.limits import SlackLimits  # noqa: E402
from bot.store import create_store  # noqa: E402
from tests.alert_helpers import TOKEN, alert, webhook  # noqa: E402

POLICY = """\
announce_channel: C0INCIDENTS
severities:
  P0: {{ack_within: 1h, resolve_within: 4h, update_every: 1h}}
  P1: {{ack_within: 1h, resolve_within: 4h, update_every: 1h}}
  P2: {{ack_within: 1h, resolve_within: 4h, update_every: 1h}}
  P3: {{ack_within: 1h, resolve_within: 1d}}
escalation:
  P1: [{{after: 0, notify: [U0ONCALL]}}]
alerts:
  token_env: ALERTS_TOKEN
  storm: {{max_incidents: {max_incidents}}}
services:
{services}
"""


class SlackTally:
    """chat.postMessage calls as the double records them: all, and the alert lists."""

    def __init__(self) -> None:
        self.posted = 0
        self.alert_lists = 0
        self.rate_limited = 0

    async def __call__(self, item: RecordedCall | RecordedResponse) -> None:
        if not isinstance(item, RecordedCall) or item.method != "chat.postMessage":
            return
        if not item.ok:
            self.rate_limited += item.response.get("error") == "ratelimited"
            return
        self.posted += 1
        text = str(item.params.get("text", ""))
        if " alert" in text and ("firing" in text or "resolved" in text):
            self.alert_lists += 1


async def _count(database_url: str, sql: str) -> int:
    store = create_store(database_url)
    await store.open()
    try:
        async with store.transaction() as tx:
            row = await tx.fetchone(sql)
        return int(row["n"]) if row else 0
    finally:
        await store.close()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def storm(args: argparse.Namespace, database_url: str, redis_url: str | None) -> None:
    names = [f"svc{n:02d}" for n in range(args.services)]
    health = web.Application()
    health.router.add_get("/health", _ok)
    health_runner, health_port = await serve(health)
    tally = SlackTally()
    double = SlackDouble(
        bot_token=BOT_TOKEN, on_event=tally, rate_limits=SlackLimits(scale=args.pace_scale)
    )
    await double.start()
    with tempfile.TemporaryDirectory(prefix="alert-storm-") as folder:
        policy = Path(folder) / "policy.yml"
        catalog = "\n".join(
            f"  {name}: {{http: [{{url: 'http://127.0.0.1:{health_port}/health'}}]}}"
            for name in names
        )
        policy.write_text(POLICY.format(services=catalog, max_incidents=args.max_incidents))
        try:
            async with cluster(
                "bot",
                args.replicas,
                double,
                database_url=database_url,
                redis_url=redis_url,
                pace_scale=args.pace_scale,
                policy=policy,
                extra_env={"ALERTS_TOKEN": TOKEN},
            ) as bots:
                await _run(args, names, bots.backends, database_url, tally)
        finally:
            await double.stop()
            await health_runner.cleanup()


async def _ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def _run(
    args: argparse.Namespace,
    names: list[str],
    backends: list[str],
    database_url: str,
    tally: SlackTally,
) -> None:
    per_service = args.alerts // len(names)
    per_wave = max(1, per_service // args.waves)
    groups: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    acks: list[float] = []
    outcomes: collections.Counter[str] = collections.Counter()
    statuses: collections.Counter[int] = collections.Counter()
    turn = 0
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        by_wave: dict[int, list[float]] = collections.defaultdict(list)

        async def send(body: bytes, backend: str, wave: int) -> None:
            sent = time.perf_counter()
            async with session.post(
                backend + "/alerts/alertmanager",
                data=body,
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            ) as response:
                answer = await response.json(content_type=None)
            acks.append(time.perf_counter() - sent)
            by_wave[wave].append(acks[-1])
            statuses[response.status] += 1
            for outcome, count in (answer.get("outcomes") or {}).items():
                outcomes[outcome] += count

        wave = 0
        while any(len(group) < per_service for group in groups.values()):
            posts = []
            for name, group in groups.items():
                fresh = min(per_wave, per_service - len(group))
                group += [
                    alert(
                        "HighErrorRate" if n % 2 else "HighLatency",
                        name,
                        instance=f"{name}-{n}",
                        starts_at=f"2026-12-05T04:00:{n % 60:02d}.{wave:09d}Z",
                    )
                    for n in range(len(group), len(group) + fresh)
                ]
                raw = json.dumps(webhook(group)).encode()
                posts.append(send(raw, backends[turn % len(backends)], wave))
                turn += 1
            await asyncio.gather(*posts)
            wave += 1
            await asyncio.sleep(args.wave_interval)
        sent_all = time.perf_counter()
    expected = per_service * len(names)
    recorded_at = None
    deadline = time.perf_counter() + 300
    while time.perf_counter() < deadline:
        if await _count(database_url, "SELECT COUNT(*) AS n FROM alerts") >= expected:
            recorded_at = time.perf_counter()
            break
        await asyncio.sleep(0.2)
    decided_at = None
    while time.perf_counter() < deadline:
        undecided = await _count(
            database_url,
            "SELECT COUNT(*) AS n FROM alerts WHERE outcome = 'pending' OR resolution_pending = 1",
        )
        if undecided == 0:
            decided_at = time.perf_counter()
            break
        await asyncio.sleep(0.2)
    drained_at = None
    while time.perf_counter() < deadline:
        pending = await _count(
            database_url,
            "SELECT COUNT(*) AS n FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL",
        )
        if pending == 0:
            drained_at = time.perf_counter()
            break
        await asyncio.sleep(0.5)
    recorded = await _count(database_url, "SELECT COUNT(*) AS n FROM alerts")
    incidents = await _count(database_url, "SELECT COUNT(*) AS n FROM incidents")
    diagnosed = await _count(
        database_url, "SELECT COUNT(*) AS n FROM timeline WHERE kind = 'diagnosed'"
    )
    posted_alerts = sum(outcomes.values())
    print(
        f"posts: {len(acks)} ({dict(statuses)}), {posted_alerts} alerts in them"
        f" ({expected} distinct), {wave} waves, {len(backends)} replicas"
    )
    print(
        f"acks: p50 {statistics.median(acks) * 1000:.1f} ms, p99"
        f" {_percentile(acks, 0.99) * 1000:.1f} ms, max {max(acks) * 1000:.1f} ms"
    )
    print(
        "slowest ack per wave (s): " + " ".join(f"{max(by_wave[w]):.2f}" for w in sorted(by_wave))
    )
    print(f"outcomes: {dict(sorted(outcomes.items()))}")
    if recorded_at is not None:
        seconds = recorded_at - started
        print(
            f"recorded: {recorded} alerts, every one {seconds:.2f} s after the first post"
            f" ({recorded / seconds:.0f} alerts/s; posting took {sent_all - started:.2f} s"
            f" with {args.wave_interval:g} s between waves)"
        )
    else:
        print(f"recorded: only {recorded} of {expected} alerts within 300 s")
    if decided_at is not None:
        print(f"decided: every alert {decided_at - started:.2f} s after the first post")
    else:
        print("decided: alerts still pending after 300 s")
    # One per service up to the storm guard's cap, then one storm incident for the rest.
    cap = args.max_incidents or len(names)
    goal = min(len(names), cap) + (len(names) > cap)
    print(f"incidents opened: {incidents} (goal: {goal}); diagnosed: {diagnosed}")
    print(
        f"Slack: {tally.posted} messages posted, {tally.alert_lists} of them alert lists"
        f" (goal: tens, not thousands); {tally.rate_limited} answered 429"
    )
    if drained_at is not None:
        print(f"outbox empty {drained_at - started:.2f} s after the first post")
    else:
        print("outbox not empty within 300 s")


async def run(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.CRITICAL)
    print(
        f"alert storm: {args.alerts} alerts for {args.services} services in {args.waves} waves,"
        f" {args.replicas} replica(s), pace scale {args.pace_scale:g}"
    )
    with servers(args.database_url, redis=True) as (database, redis_url, _pid):
        await storm(args, database("storm"), redis_url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=5000, help="distinct alerts in all")
    parser.add_argument("--services", type=int, default=20, help="services they are about")
    parser.add_argument("--waves", type=int, default=10, help="Alertmanager notifications each")
    parser.add_argument("--replicas", type=int, default=2, help="bot processes")
    parser.add_argument(
        "--max-incidents",
        type=int,
        default=5,
        help="alerts.storm.max_incidents (the policy's default; 0: one incident per service)",
    )
    parser.add_argument(
        "--wave-interval", type=float, default=0.5, help="seconds between waves (group_interval)"
    )
    parser.add_argument(
        "--database-url", help="an empty PostgreSQL database to use (default: a throwaway one)"
    )
    parser.add_argument(
        "--pace-scale",
        type=float,
        default=PACE_SCALE,
        help="Slack's clock this many times faster, for the double and the bots alike",
    )
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
