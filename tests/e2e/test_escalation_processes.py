"""The real bot as separate processes (`chatops-bot run`) on one PostgreSQL store.

kill -9 and restart: every page is delivered exactly once, the overdue ones promptly.
Two processes at once: each holds a job for every reminder and races the other for it;
each reminder still fires exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.console.workspace import SlackDouble
from bot.slack.limits import SlackLimits
from bot.slack.requests import slash_command_body
from bot.store import create_store
from tests.escalation_env import SECONDS_POLICY
from tests.harness import BOT_TOKEN, PACE_SCALE, openapi_spec
from tests.processes import (
    BotProcess,
    bot_env,
    count,
    fired_reminders,
    incident_ids,
    outbox_empty,
)
from tests.waiting import until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# The kill -9 test's policy: Checkout's P1 pages level 2 after 5 s and misses its target at
# 5.5 s, so the first bot is killed with ~4.9 s to spare on this machine (at 2 s it was ~1.9 s:
# a machine that took 2 s to deliver level 1 had the first bot fire level 2 itself, and the test
# timed out). P2, for the incident declared after the restarts (nothing is killed then), keeps
# SECONDS_POLICY's 2 s and 3 s: it waits them out.
KILL_POLICY = """\
announce_channel: C0INCIDENTS
war_room_severities: []
severities:
  P0: {ack_within: 3, resolve_within: 3600, update_every: 3600}
  P1: {ack_within: 5.5, resolve_within: 3600, update_every: 3600}
  P2: {ack_within: 3, resolve_within: 3600, update_every: 3600}
  P3: {ack_within: 3, resolve_within: 3600}
escalation:
  P1:
    - {after: 0, notify: [U0ONCALL]}
    - {after: 5, notify: [U0LEAD, S0SRE]}
  P2:
    - {after: 0, notify: [U0ONCALL]}
    - {after: 2, notify: [U0LEAD, S0SRE]}
"""


@pytest.fixture
async def double() -> AsyncIterator[SlackDouble]:
    slack = SlackDouble(
        bot_token=BOT_TOKEN,
        openapi_spec=openapi_spec(),
        rate_limits=SlackLimits(scale=PACE_SCALE),
    )
    slack.add_usergroup("S0SRE", ["U0SRE1"])
    await slack.start()
    yield slack
    await slack.stop()
    assert slack.violations == [], slack.violations


@contextmanager
def launcher(
    double: SlackDouble,
    database_url: str,
    tmp_path: Path,
    *,
    sweep: float,
    policy_text: str = SECONDS_POLICY,
) -> Iterator[Callable[[str], BotProcess]]:
    policy = tmp_path / "policy.yml"
    policy.write_text(policy_text)
    env = bot_env(double, database_url, policy, sweep=sweep)
    started: list[BotProcess] = []

    def start(name: str) -> BotProcess:
        bot = BotProcess(name, env, tmp_path)
        started.append(bot)
        return bot

    try:
        yield start
    finally:
        for bot in started:
            if bot.proc.poll() is None:
                bot.kill9()


async def declare(double: SlackDouble, bot: BotProcess, title: str, severity: str = "P1") -> None:
    body = slash_command_body(
        command="/incident",
        text=f"declare {severity} {title}",
        user_id="U0ALICE",
        channel_id="C0GENERAL",
        response_url=double.new_response_url(channel="C0GENERAL", user_id="U0ALICE"),
    )
    response = await bot.sender.send(body)
    assert response.status == 200, bot.log()


async def overdue_reminders(database_url: str) -> int:
    """Reminders still pending whose time has come (by the wall clock the bots use)."""
    store = create_store(database_url)
    await store.open()
    try:
        async with store.transaction() as tx:
            row = await tx.fetchone(
                "SELECT COUNT(*) AS n FROM reminders WHERE status = 'pending' AND due_at <= ?",
                (time.time(),),
            )
        return int(row["n"]) if row else 0
    finally:
        await store.close()


async def a_later_incident_escalates(
    double: SlackDouble, bot: BotProcess, title: str, database_url: str, severity: str = "P1"
) -> None:
    """Declare an incident through `bot` and wait for its level-2 page and ack breach (2 s
    and 3 s later, fired by the process's scheduler): the signal that the process has been
    sweeping all the while, so anything it could (wrongly) fire again had its chance."""
    await declare(double, bot, title, severity)
    ids: dict[str, str] = {}

    async def declared() -> bool:
        ids.update(await incident_ids(database_url))
        return title in ids

    await until(declared, f"{title} to be declared", timeout=15)
    incident_id = ids[title]

    async def escalated() -> bool:
        return (
            count(double, "Escalation level 2", incident_id) == 1
            and count(double, "missed its acknowledgement", incident_id) == 1
        )

    await until(escalated, f"{title} to escalate", timeout=30)


async def test_kill_9_and_restart_delivers_every_page_exactly_once(
    double: SlackDouble, postgres_url: str, tmp_path: Path
) -> None:
    with launcher(double, postgres_url, tmp_path, sweep=5.0, policy_text=KILL_POLICY) as start:
        first = start("first")
        await first.ready()
        await declare(double, first, "Checkout down")

        async def level_one_delivered() -> bool:
            done = count(double, "Escalation level 1") == 1
            return done and count(double, "You are paged (escalation level 1)") == 1

        await until(level_one_delivered, "the level-1 page", timeout=15)
        await until(lambda: outbox_empty(postgres_url), "the outbox to drain", timeout=15)
        # Level 2 must still be ahead when we kill (KILL_POLICY: 5 s after the declaration): had
        # the first bot fired it, `both_overdue` below would never see two overdue reminders.
        first.kill9()  # no clean shutdown: the reminders live only in PostgreSQL now

        async def both_overdue() -> bool:  # level 2 (5 s) and the ack target (5.5 s)
            return await overdue_reminders(postgres_url) == 2

        await until(both_overdue, "level 2 and the ack target to be overdue", timeout=15)
        assert count(double, "Escalation level 2") == 0

        second = start("second")
        await second.ready()

        async def overdue_delivered() -> bool:
            return (
                count(double, "Escalation level 2") == 1
                and count(double, "missed its acknowledgement") == 1
                and count(double, "You are paged (escalation level 2)") == 2
            )

        await until(overdue_delivered, "the overdue page and breach warning", timeout=15)
        await until(lambda: outbox_empty(postgres_url), "the outbox to drain", timeout=15)
        second.kill9()

        third = start("third")  # and once more: nothing is repeated
        await third.ready()
        await a_later_incident_escalates(double, third, "Search down", postgres_url, "P2")
        await until(lambda: outbox_empty(postgres_url), "the outbox to drain", timeout=15)
        await third.stop()

    checkout = (await incident_ids(postgres_url))["Checkout down"]
    assert count(double, "Incident Update: Checkout down") == 1
    assert count(double, "Escalation level 1", checkout) == 1
    assert count(double, "You are paged (escalation level 1)", checkout) == 1
    assert count(double, "Escalation level 2", checkout) == 1
    assert count(double, "You are paged (escalation level 2)", checkout) == 2  # U0LEAD, U0SRE1
    assert count(double, "missed its acknowledgement", checkout) == 1
    statuses = sorted(
        (r["kind"], r["level"], r["status"])
        for r in await fired_reminders(postgres_url)
        if r["incident_id"] == checkout
    )
    assert statuses == [
        ("ack_breach", 0, "fired"),
        ("page", 1, "fired"),
        ("page", 2, "fired"),
        ("resolve_breach", 0, "pending"),
        ("update_due", 0, "pending"),
    ]


async def test_two_processes_fire_each_reminder_exactly_once(
    double: SlackDouble, postgres_url: str, tmp_path: Path
) -> None:
    incidents = 8
    with launcher(double, postgres_url, tmp_path, sweep=0.5) as start:
        pair = [start("a"), start("b")]
        await asyncio.gather(*(bot.ready() for bot in pair))
        for number in range(incidents):  # half declared through each process
            await declare(double, pair[number % 2], f"Outage {number}")

        async def all_fired() -> bool:
            return (
                count(double, "Escalation level 2") >= incidents
                and count(double, "missed its acknowledgement") >= incidents
                and count(double, "You are paged (escalation level 2)") >= 2 * incidents
            )

        await until(all_fired, "every level-2 page and breach warning", timeout=30)
        # Both go on sweeping (every 0.5 s) while a later incident escalates on each:
        # nothing may fire again.
        await asyncio.gather(
            *(
                a_later_incident_escalates(double, bot, f"Later {bot.name}", postgres_url)
                for bot in pair
            )
        )
        await until(lambda: outbox_empty(postgres_url), "the outbox to drain", timeout=15)
        for bot in pair:
            await bot.stop()

    outages = {i for title, i in (await incident_ids(postgres_url)).items() if "Outage" in title}
    rows = [r for r in await fired_reminders(postgres_url) if r["incident_id"] in outages]
    ids = sorted({str(r["incident_id"]) for r in rows})
    assert len(ids) == incidents
    for incident_id in ids:
        assert count(double, "Escalation level 1", incident_id) == 1
        assert count(double, "Escalation level 2", incident_id) == 1
        assert count(double, "missed its acknowledgement", incident_id) == 1
        assert count(double, "You are paged (escalation level 2)", incident_id) == 2
    fired = [r for r in rows if r["status"] == "fired"]
    assert len(fired) == 3 * incidents  # level 1, level 2, ack breach
    owners = {str(r["claimed_by"]).split(":")[1] for r in fired}
    print(f"reminders fired by {len(owners)} processes (pids {sorted(owners)})")
    # Never early; how late is a figure for bench/escalation_load.py, not an assertion here.
    assert all(float(r["fired_at"]) >= float(r["due_at"]) for r in fired)  # type: ignore[arg-type]
