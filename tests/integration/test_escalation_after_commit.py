"""Nothing is scheduled or kicked before its row commits.

The escalation planner runs inside the transaction that changes an incident. A reminder it
hands to APScheduler, or an outbox kick, before that transaction commits may run against a
row that another connection cannot see yet, or that a rollback removes: the job then finds
nothing, and the real reminder waits for the next sweep. Each test here looks from a second
connection, at the very moment a job is added or the dispatcher is kicked.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psycopg
import pytest
from apscheduler.events import EVENT_JOB_ADDED, JobEvent

from bot.incidents.changes import IncidentChange
from bot.incidents.schemas import DeclareIncident
from bot.models import Severity
from bot.store import Tx
from bot.store.sqlite import sqlite_path
from tests.escalation_env import ALICE, Env, seconds_policy, start_env, stop_env


@pytest.fixture(params=["sqlite", "postgres"])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/after-commit.db"
    else:
        url = request.getfixturevalue("migrated_postgres_url")
    # Level 2 after 2 s, the ack target after 3 s: both inside the scheduler's lookahead.
    started = await start_env(url, policy=seconds_policy())
    await started.services.reminders.start()
    yield started
    await stop_env(started)


def _reader(url: str) -> Callable[[str, tuple[object, ...]], bool]:
    """A second connection: does this query find a committed row? (sync: called from hooks)"""

    def found(sql: str, params: tuple[object, ...]) -> bool:
        if url.startswith("sqlite"):
            with sqlite3.connect(sqlite_path(url)) as conn:
                return conn.execute(sql.replace("%s", "?"), params).fetchone() is not None
        with psycopg.connect(url, autocommit=True) as conn:
            return conn.execute(sql, params).fetchone() is not None

    return found


class Observer:
    """Records each reminder job added and each kick, with whether its row was visible."""

    def __init__(self, env: Env) -> None:
        self.found = _reader(str(env.services.store.url))  # type: ignore[attr-defined]
        self.jobs: list[tuple[int, bool]] = []
        self.kicks: list[bool] = []
        self.incident_id: str | None = None
        engine = env.services.reminders
        engine.scheduler.add_listener(self._job_added, EVENT_JOB_ADDED)
        dispatcher = env.services.dispatcher
        kick = dispatcher.kick

        def observed_kick() -> None:
            self.kicks.append(self._incident_visible())
            kick()

        dispatcher.kick = observed_kick  # type: ignore[method-assign]

    def _incident_visible(self) -> bool:
        if self.incident_id is None:  # not known yet: any incident row at all
            return self.found("SELECT 1 FROM incidents", ())
        return self.found("SELECT 1 FROM incidents WHERE id = %s", (self.incident_id,))

    def _job_added(self, event: JobEvent) -> None:
        if not event.job_id.startswith("reminder-"):
            return  # the sweep's own job
        reminder_id = int(event.job_id.removeprefix("reminder-"))
        visible = self.found("SELECT 1 FROM reminders WHERE id = %s", (reminder_id,))
        self.jobs.append((reminder_id, visible))


class Refuses:
    """A listener after the planner that refuses the change: the transaction rolls back."""

    async def incident_changed(self, tx: Tx, change: IncidentChange) -> None:
        raise RuntimeError("refused by a later listener")


async def test_a_reminder_is_scheduled_only_once_its_row_is_visible(env: Env) -> None:
    seen = Observer(env)
    command = DeclareIncident(severity=Severity.P1, title="Checkout down")

    incident = await env.services.incidents.declare(command, ALICE)

    assert len(seen.jobs) >= 2, seen.jobs  # level 2 and the ack breach, due within seconds
    assert all(visible for _, visible in seen.jobs), seen.jobs
    assert seen.kicks and all(seen.kicks), seen.kicks
    assert incident.id


async def test_a_declaration_that_rolls_back_schedules_and_kicks_nothing(env: Env) -> None:
    seen = Observer(env)
    env.services.listeners.append(Refuses())
    command = DeclareIncident(severity=Severity.P1, title="Checkout down")

    with pytest.raises(RuntimeError, match="refused"):
        await env.services.incidents.declare(command, ALICE)

    assert seen.jobs == [] and seen.kicks == []
    assert await env.services.incidents.list(open_only=False) == []
    # The same declaration without the refusal schedules and kicks: the observer works.
    env.services.listeners.pop()
    await env.services.incidents.declare(command, ALICE)
    assert seen.jobs and all(visible for _, visible in seen.jobs), seen.jobs
    assert seen.kicks and all(seen.kicks), seen.kicks
