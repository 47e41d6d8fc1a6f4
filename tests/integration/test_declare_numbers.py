"""Incident numbers: taken in a transaction of their own, so declarations do not queue behind
each other on the day's counter, and handed back when a Slack retry is refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.errors import DuplicateRequest
from bot.incidents.changes import IncidentChange
from bot.incidents.schemas import DeclareIncident
from bot.models import Severity
from bot.store import Tx
from tests.escalation_env import ALICE, Env, start_env, stop_env


@pytest.fixture(params=["sqlite", "postgres"])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/numbers.db"
    else:
        url = request.getfixturevalue("migrated_postgres_url")
    started = await start_env(url)
    yield started
    await stop_env(started)


def _declaring(title: str) -> DeclareIncident:
    return DeclareIncident(severity=Severity.P3, title=title)


async def test_a_refused_retry_gives_its_number_back(env: Env) -> None:
    incidents = env.services.incidents
    first = await incidents.declare(_declaring("First"), ALICE, request_id="req-1")
    with pytest.raises(DuplicateRequest):
        await incidents.declare(_declaring("First"), ALICE, request_id="req-1")  # a retry
    second = await incidents.declare(_declaring("Second"), ALICE, request_id="req-2")
    assert first.id.endswith("-001") and second.id.endswith("-002")  # no number lost


class _Holding:
    """Holds the first declaration's transaction open, after it wrote its incident."""

    def __init__(self) -> None:
        self.inside = asyncio.Event()
        self.release = asyncio.Event()

    async def incident_changed(self, tx: Tx, change: IncidentChange) -> None:
        if change.after.title == "Held":
            self.inside.set()
            await self.release.wait()


@pytest.fixture
async def pg_env(migrated_postgres_url: str) -> AsyncIterator[Env]:
    """PostgreSQL only: SQLite has one writer at a time, declarations queue there by design."""
    started = await start_env(migrated_postgres_url)
    yield started
    await stop_env(started)


async def test_a_declaration_does_not_wait_for_another_still_open(pg_env: Env) -> None:
    env = pg_env
    holding = _Holding()
    env.services.incidents.changes.listeners.append(holding)
    held = asyncio.create_task(env.services.incidents.declare(_declaring("Held"), ALICE))
    try:
        await asyncio.wait_for(holding.inside.wait(), 10)
        # Taken inside the held transaction, the day's counter row would stay locked until
        # it commits, and this declaration would wait for it.
        other = await asyncio.wait_for(
            env.services.incidents.declare(_declaring("Not held"), ALICE), 10
        )
    finally:
        holding.release.set()
    first = await held
    assert (first.id[-3:], other.id[-3:]) == ("001", "002")
