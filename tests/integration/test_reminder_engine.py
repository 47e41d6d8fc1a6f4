"""The reminder engine's extension point: one owner per kind, and a reminder of a kind this
process does not know is closed as skipped (said once), never left to loop or fired blind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.escalation import ReminderKind
from bot.incidents.changes import Change
from bot.models import Incident
from bot.reminders import FireResult, Firing, PlannedReminder, Reminder, ReminderStatus
from bot.reminders import storage as reminders
from tests.escalation_env import Env, start_env, stop_env


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    started = await start_env(f"sqlite:///{tmp_path}/engine.db")
    yield started
    await stop_env(started)


class _Counting:
    def __init__(self) -> None:
        self.fired: list[tuple[int, str | None, str | None]] = []

    async def fire(self, change: Change, reminder: Reminder, incident: Incident | None) -> Firing:
        self.fired.append((reminder.id, reminder.subject, incident.id if incident else None))
        return Firing(ReminderStatus.FIRED, "counted")


async def test_a_kind_has_one_owner(env: Env) -> None:
    engine = env.services.reminders
    with pytest.raises(ValueError, match="'page' already has a handler"):
        engine.register([ReminderKind.PAGE], _Counting())
    with pytest.raises(ValueError, match="'action_item' already has a handler"):
        engine.register(["action_item"], _Counting())


async def test_a_registered_kind_fires_through_its_handler_once(env: Env) -> None:
    handler = _Counting()
    env.services.reminders.register(["tea_break"], handler)
    due = env.clock.now() + timedelta(minutes=5)
    async with env.services.store.transaction() as tx:
        reminder_id = await reminders.insert(
            tx, None, 0, PlannedReminder("tea_break", due, subject="kettle:1"), env.clock.now()
        )
    assert await env.services.reminders.fire(reminder_id) is FireResult.NOT_CLAIMED  # not due
    assert await env.step(minutes=5) == 1
    assert await env.step(minutes=5) == 0
    assert handler.fired == [(reminder_id, "kettle:1", None)]


async def test_a_kind_nobody_registered_is_skipped_not_retried(env: Env) -> None:
    incident = await env.declare("P3")
    now = env.clock.now()
    async with env.services.store.transaction() as tx:
        reminder_id = await reminders.insert(
            tx, incident.id, 0, PlannedReminder("from_a_newer_bot", now), now
        )
    assert await env.services.reminders.fire(reminder_id) is FireResult.SKIPPED
    [stored] = [r for r in await env.reminders(incident) if r.id == reminder_id]
    assert (stored.status, stored.outcome) == (
        ReminderStatus.SKIPPED,
        "no handler for from_a_newer_bot",
    )
    assert await env.services.reminders.fire(reminder_id) is FireResult.NOT_CLAIMED
