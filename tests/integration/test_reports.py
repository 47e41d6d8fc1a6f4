"""Reports on a fake clock, on SQLite and PostgreSQL: every statistic, the report, the
two-step upload through the Slack double, the chart, action-item reminders, similar
incidents and the App Home."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from slack_sdk.models.views import View

from bot.escalation import ReminderStatus
from bot.models import Severity
from bot.reports import markdown
from bot.reports.chart import build_figure, render_png, week_labels
from bot.reports.forms import PostmortemInput
from bot.reports.models import NewActionItem
from bot.slack.home import home_view
from tests.escalation_env import ALICE, BOB, FRIDAY_2PM, Env, start_env, stop_env

MIN = 60
HOUR = 3600


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/reports.db"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[Env]:
    env = await start_env(database_url)
    yield env
    await stop_env(env)


async def _incident(env: Env, severity: str, title: str, ack: float | None, resolve: float | None):
    """Declare now; acknowledge after `ack` s and resolve after `resolve` s (from declaration)."""
    incident = await env.declare(severity, title)
    start = env.clock.now()
    if ack is not None:
        env.clock.set(start + timedelta(seconds=ack))
        await env.services.incidents.acknowledge(incident.id, ALICE)
    if resolve is not None:
        env.clock.set(start + timedelta(seconds=resolve))
        await env.services.incidents.resolve(incident.id, ALICE, summary="rolled back")
    await env.deliver()
    return incident


async def test_every_figure_on_a_fake_clock(env: Env) -> None:
    # Three P1s: ack after 10, 20, 60 min (target 30 min); resolved after 1, 2, 5 h (4 h).
    first = await _incident(env, "P1", "Checkout 502", 10 * MIN, 1 * HOUR)
    env.clock.advance(hours=1)
    await _incident(env, "P1", "Search slow", 20 * MIN, 2 * HOUR)
    env.clock.advance(hours=1)
    await _incident(env, "P1", "Login errors", 60 * MIN, 5 * HOUR)
    # A P3 declared on Friday 16:00 London: its 1-business-day ack target is Monday 16:00,
    # so an ack on Monday 10:00 (66 h later) is within target.
    env.clock.set(FRIDAY_2PM + timedelta(days=7, hours=2))  # Friday 4 Dec, 16:00
    p3 = await _incident(env, "P3", "Typo on the status page", 66 * HOUR, 67 * HOUR)
    # An open P2, never acknowledged: after its 2 h ack target it counts as a breach.
    env.clock.advance(hours=1)
    await _incident(env, "P2", "Cache misses", None, None)
    env.clock.advance(hours=3)
    # MTTD for the first P1: impact began 30 min before declaration, detected 10 min before.
    await env.services.reports.save_postmortem(
        first.id,
        ALICE,
        PostmortemInput(
            started_at=first.declared_at - timedelta(minutes=30),
            detected_at=first.declared_at - timedelta(minutes=10),
        ),
    )

    stats = await env.services.reports.stats(30)
    rows = {row.severity: row for row in stats.by_severity}
    p1 = rows[Severity.P1]
    assert p1.incidents == 3
    assert (p1.mtta.count, p1.mtta.median, p1.mtta.p90) == (3, 20 * MIN, 52 * MIN)
    assert (p1.mttr.count, p1.mttr.median, p1.mttr.p90) == (3, 2 * HOUR, 4 * HOUR + 24 * MIN)
    assert (p1.ack_breaches, p1.resolve_breaches) == (1, 1)
    assert (p1.mttd.count, p1.mttd.median, p1.mttd.p90) == (1, 20 * MIN, 20 * MIN)
    p3_row = rows[Severity.P3]
    assert (p3_row.incidents, p3_row.ack_breaches, p3_row.resolve_breaches) == (1, 0, 0)
    assert p3_row.mtta.median == 66 * HOUR
    p2 = rows[Severity.P2]
    assert (p2.incidents, p2.mtta.count, p2.mttr.count, p2.ack_breaches) == (1, 0, 0, 1)
    assert rows[Severity.P0].incidents == 0
    assert stats.total == 5
    # Weeks start on Monday 00:00 UTC; every week of the window is there, empty ones too.
    by_week = {week.start.date().isoformat(): week for week in stats.weeks}
    assert len(stats.weeks) == 6 and min(by_week) == "2026-11-02"
    assert by_week["2026-11-23"].counts == {Severity.P1: 3}
    assert by_week["2026-11-23"].mttr_median == 2 * HOUR
    assert by_week["2026-11-30"].counts == {Severity.P3: 1}
    assert by_week["2026-11-30"].mttr_median == 67 * HOUR
    assert by_week["2026-12-07"].counts == {Severity.P2: 1}
    assert by_week["2026-12-07"].mttr_median is None
    assert by_week["2026-11-16"].total == 0
    # The P3's report counts its duration in working hours: Fri 16-17, Mon 09-11 = 3 h.
    facts = await env.services.reports.report(p3.id)
    assert facts.working_seconds == 3 * HOUR
    assert facts.first_acknowledged_at == p3.declared_at + timedelta(hours=66)
