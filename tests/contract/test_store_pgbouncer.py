"""The bot's store behind PgBouncer in transaction mode (tests/pgbouncer_server.py): each
transaction may run on another server connection, so statements must not be prepared."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from bot.errors import StoreError
from bot.incidents import storage
from bot.models import Incident, Severity, Status
from bot.store import create_store, migrate
from bot.store.migrate import pending_migrations
from tests.pgbouncer_server import PgBouncerServer

NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
INCIDENT = Incident(
    id="INC-20261127-001",
    title="Checkout API returns 502",
    severity=Severity.P1,
    status=Status.INVESTIGATING,
    declared_by="U0ALICE",
    declared_at=NOW,
    updated_at=NOW,
    services=("checkout",),
    roles={"commander": "U0ALICE"},
)
# More runs of one statement than psycopg's prepare_threshold (5).
RUNS = 6


@pytest.fixture
def bounced_url(pgbouncer_server: PgBouncerServer, postgres_url: str) -> Iterator[str]:
    """An empty database, by way of PgBouncer."""
    yield pgbouncer_server.through(postgres_url)
    pgbouncer_server.forget(postgres_url.rsplit("/", 1)[1])


async def test_migrates_and_works_through_transaction_pooling(
    bounced_url: str, pgbouncer_server: PgBouncerServer
) -> None:
    store = create_store(bounced_url, pool_size=4, prepare=False)
    await store.open()
    try:
        assert await migrate(store)  # advisory lock, DDL scripts: one transaction each
        assert await pending_migrations(store) == []
        async with store.transaction() as tx:
            await storage.insert(tx, INCIDENT, day="20261127", seq=1)
        for run in range(RUNS * 2):
            if run == RUNS:
                # Every server connection is replaced: nothing of a session may be relied on.
                pgbouncer_server.admin(f"RECONNECT {bounced_url.rsplit('/', 1)[1]}")
            async with store.transaction() as tx:
                assert await storage.get(tx, INCIDENT.id) == INCIDENT

        async def take() -> int:
            async with store.transaction() as tx:
                return await storage.next_sequence(tx, "20261127")

        numbers = await asyncio.gather(*(take() for _ in range(20)))
        assert sorted(numbers) == list(range(1, 21))
    finally:
        await store.close()


async def test_prepared_statements_behind_pgbouncer_are_refused_naming_the_setting(
    pgbouncer_url: str, pgbouncer_server: PgBouncerServer
) -> None:
    store = create_store(pgbouncer_url, pool_size=1)  # prepares, as by default
    await store.open()
    try:
        async with store.transaction() as tx:
            await storage.insert(tx, INCIDENT, day="20261127", seq=1)
        for _ in range(RUNS):
            async with store.transaction() as tx:
                await storage.get(tx, INCIDENT.id)
        pgbouncer_server.admin(f"RECONNECT {pgbouncer_url.rsplit('/', 1)[1]}")
        with pytest.raises(StoreError, match="set DATABASE_PREPARE=off") as raised:
            async with store.transaction() as tx:
                await storage.get(tx, INCIDENT.id)
        assert "unavailable" not in str(raised.value)  # the database is up
    finally:
        await store.close()
