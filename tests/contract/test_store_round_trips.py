"""Issue 19: statements the Store sends without waiting for them (`Tx.execute_nowait`) and
statements without a transaction (`Store.autocommit()`). Errors as a transaction's, on both
stores; on PostgreSQL, the round trips counted in libpq's protocol trace (a count, not a
time): the client waits for the server after each Sync (extended protocol) or Query."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
import pytest
from psycopg import pq

from bot.errors import StoreError, StoreUnavailable, UniqueViolation
from bot.store import Store, create_store, migrate
from bot.store.base import CommitLog, commit_log
from bot.store.postgres import PostgresStore

INSERT = "INSERT INTO handled_requests (request_id, handled_at) VALUES (?, ?)"


async def _requests(store: Store) -> list[str]:
    async with store.transaction() as tx:
        rows = await tx.fetchall("SELECT request_id FROM handled_requests ORDER BY handled_at")
    return [row["request_id"] for row in rows]


@pytest.fixture
async def one_connection(store_url: str) -> AsyncIterator[Store]:
    """A store of one connection: what a failed transaction leaves, the next one meets."""
    store = create_store(store_url, pool_size=1)
    await store.open()
    await migrate(store)
    yield store
    await store.close()


async def test_a_write_not_waited_for_still_fails_its_transaction(one_connection: Store) -> None:
    store = one_connection
    async with store.transaction() as tx:
        await tx.execute_nowait(INSERT, ("kept", 1.0))
        await tx.execute_nowait(INSERT, ("kept too", 2.0))
    # Its error is raised by the next statement that waits for an answer...
    with pytest.raises(UniqueViolation):
        async with store.transaction() as tx:
            await tx.execute_nowait(INSERT, ("gone", 3.0))
            await tx.execute_nowait(INSERT, ("kept", 4.0))
            await tx.fetchone("SELECT COUNT(*) AS n FROM handled_requests")
    # ... or by the commit, when none came after it.
    with pytest.raises(UniqueViolation):
        async with store.transaction() as tx:
            await tx.execute(INSERT, ("gone too", 5.0))
            await tx.execute_nowait(INSERT, ("kept", 6.0))
    # A statement the database rejects is a StoreError, as when waited for.
    with pytest.raises(StoreError):
        async with store.transaction() as tx:
            await tx.execute_nowait("INSERT INTO no_such_table VALUES (?)", (1,))
            await tx.execute_with_commit(INSERT, ("gone as well", 7.0))
    async with store.transaction() as tx:
        await tx.execute_nowait(INSERT, ("last", 8.0))
        await tx.execute_with_commit(INSERT, ("with the commit", 9.0))
    assert await _requests(store) == ["kept", "kept too", "last", "with the commit"]


@pytest.mark.postgres
async def test_a_handled_error_of_a_write_not_waited_for_cannot_commit(postgres_url: str) -> None:
    """The error of a held statement surfaces at the next statement: a caller that handles
    the error of its own statement there (a duplicate it expects) still cannot commit."""
    store = create_store(postgres_url, pool_size=1)
    await store.open()
    await migrate(store)
    try:
        async with store.transaction() as tx:
            await tx.execute(INSERT, ("first", 1.0))
        with pytest.raises(UniqueViolation):
            async with store.transaction() as tx:
                await tx.execute_nowait(INSERT, ("first", 2.0))
                with pytest.raises(UniqueViolation):
                    await tx.execute(INSERT, ("second", 3.0))
                # the caller takes it for its own duplicate and goes on
        assert await _requests(store) == ["first"]
    finally:
        await store.close()


async def test_autocommit_statements_stand_alone(store: Store) -> None:
    log = CommitLog()
    token = commit_log.set(log)
    try:
        async with store.autocommit() as db:
            assert await db.execute(INSERT, ("one", 1.0)) == 1
    finally:
        commit_log.reset(token)
    assert (log.sent, log.committed) == (1, 1)  # a write that stands, as a command tells
    async with store.autocommit() as db:
        with pytest.raises(UniqueViolation):
            await db.execute(INSERT, ("one", 2.0))
    async with store.autocommit() as db:
        row = await db.fetchone("SELECT request_id FROM handled_requests")
        rows = await db.fetchall("SELECT request_id FROM handled_requests")
    assert row == {"request_id": "one"}
    assert rows == [row]
    with pytest.raises(StoreError) as caught:
        async with store.autocommit() as db:
            await db.fetchall("SELECT * FROM no_such_table")
    assert type(caught.value) is StoreError
    await store.ping()


@pytest.mark.postgres
async def test_autocommit_refuses_a_row_lock(postgres_url: str) -> None:
    store = create_store(postgres_url)
    await store.open()
    try:
        with pytest.raises(StoreError, match="row lock"):
            async with store.autocommit() as db:
                await db.fetchone("SELECT * FROM incidents WHERE id = ? FOR UPDATE", ("x",))
    finally:
        await store.close()


@pytest.mark.postgres
async def test_autocommit_reports_an_outage(postgres_url: str, postgres_server: Any) -> None:
    store = PostgresStore(postgres_url, max_size=1, timeout=0.5, queue_timeout=300)
    await store.open()
    dbname = postgres_url.rsplit("/", 1)[1]
    admin = await psycopg.AsyncConnection.connect(postgres_server.dsn, autocommit=True)
    try:
        await admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (dbname,),
        )
        for _ in range(2):  # the dead pooled connection, then the refused reconnection
            with pytest.raises(StoreUnavailable):
                async with store.autocommit() as db:
                    await db.fetchone("SELECT 1 AS one")
    finally:
        await admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
        await admin.close()
        await store.close()


async def _round_trips(store: Store, work: Callable[[], Awaitable[None]]) -> tuple[int, str]:
    """Round trips `work` takes on the store's one connection, and what it sent."""
    pool = store._pool  # type: ignore[attr-defined]
    conn = await pool.getconn()
    await pool.putconn(conn)
    with tempfile.TemporaryFile("w+") as trace:
        conn.pgconn.trace(trace.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            await work()
        finally:
            conn.pgconn.untrace()
        trace.seek(0)
        lines = trace.read()
    sent = [line.split("\t") for line in lines.splitlines()]
    trips = sum(1 for line in sent if line[0] == "F" and line[2] in ("Sync", "Query"))
    return trips, lines


@pytest.mark.postgres
async def test_writes_not_waited_for_go_with_the_next_round_trip(postgres_url: str) -> None:
    store = create_store(postgres_url, pool_size=1)
    await store.open()
    await migrate(store)

    async def transaction() -> None:
        async with store.transaction() as tx:
            await tx.execute_nowait(INSERT, ("a", 1.0))
            await tx.execute_nowait(INSERT, ("b", 2.0))
            row = await tx.fetchone("SELECT COUNT(*) AS n FROM handled_requests")
            assert row == {"n": 2}  # sent, and run, before the read
            await tx.execute_nowait(INSERT, ("c", 3.0))
            await tx.execute_with_commit(INSERT, ("d", 4.0))

    async def one_read() -> None:
        async with store.autocommit() as db:
            assert await db.fetchone("SELECT request_id FROM handled_requests") is not None

    try:
        # BEGIN + two inserts + the read; one insert + the audit-like write + COMMIT.
        trips, _ = await _round_trips(store, transaction)
        assert trips == 2
        assert await _requests(store) == ["a", "b", "c", "d"]
        trips, sent = await _round_trips(store, one_read)
        assert trips == 1
        assert "BEGIN" not in sent and "COMMIT" not in sent
    finally:
        await store.close()
