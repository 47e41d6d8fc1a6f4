"""Two real bot processes (`chatops-bot run`) on one PostgreSQL store, a level whose two
people are both deactivated: their DMs fail in either process, and the next level is paged
at once, exactly once; its own timer, raced by both processes, pages nobody again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.console.workspace import SlackDouble
from bot.slack.limits import SlackLimits
from tests.e2e.test_escalation_processes import declare
from tests.harness import BOT_TOKEN, PACE_SCALE, openapi_spec
from tests.processes import BotProcess, bot_env, count, fired_reminders, incident_ids, outbox_empty
from tests.waiting import until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# Level 1's failed DMs must page level 2 before level 2's own timer does: 5 s gives ~4.9 s to
# spare on this machine (2 s left ~1.9 s: a slow machine's timer paged level 2 first, without
# "level 1 reached nobody"). The acknowledgement target comes after the timer (5.5 s): the
# breach warning is the sign that both processes swept past it.
POLICY = """\
announce_channel: C0INCIDENTS
war_room_severities: []
severities:
  P0: {ack_within: 3, resolve_within: 3600, update_every: 3600}
  P1: {ack_within: 5.5, resolve_within: 3600, update_every: 3600}
  P2: {ack_within: 3, resolve_within: 3600, update_every: 3600}
  P3: {ack_within: 3, resolve_within: 3600}
escalation:
  P1:
    - {after: 0, notify: [U0GONE1, U0GONE2]}
    - {after: 5, notify: [U0LEAD]}
"""


@pytest.fixture
async def double() -> AsyncIterator[SlackDouble]:
    slack = SlackDouble(
        bot_token=BOT_TOKEN,
        openapi_spec=openapi_spec(),
        rate_limits=SlackLimits(scale=PACE_SCALE),
        users={
            "U0ALICE": {},
            "U0LEAD": {},
            "U0GONE1": {"deleted": True},
            "U0GONE2": {"deleted": True},
        },
    )
    await slack.start()
    yield slack
    await slack.stop()
    assert slack.violations == [], slack.violations


async def test_two_processes_page_the_next_level_once_when_one_reaches_nobody(
    double: SlackDouble, postgres_url: str, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    env = bot_env(double, postgres_url, policy, sweep=0.5)
    pair = [BotProcess(name, env, tmp_path) for name in ("a", "b")]
    try:
        await asyncio.gather(*(bot.ready() for bot in pair))
        await declare(double, pair[0], "Checkout down")

        async def breached() -> bool:
            return count(double, "missed its acknowledgement") == 1

        await until(breached, "the acknowledgement target to pass", timeout=30)
        await until(lambda: outbox_empty(postgres_url), "the outbox to drain", timeout=15)
        for bot in pair:
            await bot.stop()
    finally:
        for bot in pair:
            if bot.proc.poll() is None:
                bot.kill9()

    incident = (await incident_ids(postgres_url))["Checkout down"]
    # Told in the announcement's thread (no war room), each once, whichever process failed it.
    assert count(double, "page could not reach <@U0GONE1>: deactivated in Slack") == 1
    assert count(double, "page could not reach <@U0GONE2>: deactivated in Slack") == 1
    assert count(double, "Escalation level 2", incident) == 1
    assert count(double, "Escalation level 2", "Paged now: level 1 reached nobody", incident) == 1
    assert count(double, "You are paged (escalation level 2)", incident) == 1
    pages = sorted(
        (r["level"], r["status"])
        for r in await fired_reminders(postgres_url)
        if r["incident_id"] == incident and r["kind"] == "page"
    )
    assert pages == [(1, "fired"), (2, "cancelled"), (2, "fired")]
