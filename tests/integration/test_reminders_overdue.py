"""`chatops_reminders_overdue_seconds` reads how late the most overdue unfired reminder is:
the signal the ChatopsRemindersLate rule fires on when no process fires reminders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.reminders import ReminderStatus
from tests.escalation_env import Env, start_env, stop_env


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    started = await start_env(f"sqlite:///{tmp_path}/overdue.db")
    yield started
    await stop_env(started)


async def test_an_unfired_reminder_is_overdue_by_its_age_until_it_fires(env: Env) -> None:
    engine = env.services.reminders
    incident = await env.declare("P1")
    assert await engine.overdue_seconds() == 0.0  # everything pending lies ahead
    soonest = min((await env.pending(incident)).values())

    env.clock.advance(seconds=(soonest - env.clock.now()).total_seconds() + 90)
    assert await engine.overdue_seconds() == pytest.approx(90.0)

    assert await engine.fire_due() >= 1
    left = await env.services.escalation.reminders_for(incident.id, [ReminderStatus.PENDING])
    assert all(r.due_at > env.clock.now() for r in left)
    assert await engine.overdue_seconds() == 0.0
