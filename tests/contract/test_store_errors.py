"""Every error the Store promises (bot/store/base.py), the same on SQLite and PostgreSQL:
unavailable, busy, duplicate key, rejected statement; never a driver error."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psycopg
import pytest

from bot.errors import StoreBusy, StoreError, StoreUnavailable, UniqueViolation
from bot.store import Store, create_store, migrate
from bot.store import sqlite as sqlite_store
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SqliteStore, sqlite_path


async def _count(store: Store, table: str) -> int:
    async with store.transaction() as tx:
        row = await tx.fetchone(f"SELECT COUNT(*) AS n FROM {table}")
    assert row is not None
    return int(row["n"])


async def test_duplicate_key_is_unique_violation_and_rolls_back_whole(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.execute(
            "INSERT INTO handled_requests (request_id, handled_at) VALUES (?, ?)", ("r1", 1.0)
        )
    with pytest.raises(UniqueViolation) as caught:
        async with store.transaction() as tx:
            await tx.execute(
                "INSERT INTO handled_requests (request_id, handled_at) VALUES (?, ?)", ("r2", 2.0)
            )
            await tx.execute(
                "INSERT INTO handled_requests (request_id, handled_at) VALUES (?, ?)", ("r1", 3.0)
            )
    assert not isinstance(caught.value, StoreUnavailable)  # a duplicate is not an outage
    assert "duplicate key" in str(caught.value)
    assert await _count(store, "handled_requests") == 1  # r2 went with the transaction


async def test_rejected_statement_is_a_store_error_not_an_outage(store: Store) -> None:
    with pytest.raises(StoreError) as caught:
        async with store.transaction() as tx:
            await tx.fetchall("SELECT * FROM no_such_table")
    assert type(caught.value) is StoreError
    assert not isinstance(caught.value, sqlite3.Error | psycopg.Error)
    await store.ping()  # and the store goes on working


async def _hold_sqlite(store_url: str, holding: asyncio.Event, release: asyncio.Event) -> None:
    """Another process holding SQLite's write lock: a transaction that does not end."""
    conn = sqlite3.connect(sqlite_path(store_url), isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        holding.set()
        await release.wait()
        conn.execute("ROLLBACK")
    finally:
        conn.close()


async def test_waiting_past_the_bound_is_busy_never_unavailable(store_url: str) -> None:
    """Load is refused only past `queue_timeout`, and then as busy, not as an outage."""
    store = create_store(store_url, pool_size=1, queue_timeout=0.3)
    await store.open()
    await migrate(store)
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold_pool() -> None:  # PostgreSQL: the pool's only connection stays lent out
        async with store.transaction() as tx:
            await tx.fetchone("SELECT 1 AS one")
            holding.set()
            await release.wait()

    sqlite = store_url.startswith("sqlite")
    holder = asyncio.create_task(
        _hold_sqlite(store_url, holding, release) if sqlite else hold_pool()
    )
    try:
        await holding.wait()
        with pytest.raises(StoreBusy) as caught:
            async with store.transaction() as tx:
                await tx.execute(
                    "INSERT INTO handled_requests (request_id, handled_at) VALUES (?, ?)",
                    ("late", 1.0),
                )
        assert not isinstance(caught.value, StoreUnavailable)
        assert "busy" in str(caught.value)
        await store.ping()  # a busy database is a live one: /healthz stays 200
    finally:
        release.set()
        await holder
    assert await _count(store, "handled_requests") == 0
    await store.close()


async def test_load_waits_its_turn_past_one_wait_slice(store_url: str) -> None:
    """Many more transactions than connections, each holding its connection a while: every
    one is served, although together they wait far longer than one slice (`timeout`)."""
    if store_url.startswith("sqlite"):
        store: Store = SqliteStore(store_url, queue_timeout=30)
    else:
        store = PostgresStore(store_url, max_size=2, timeout=0.05, queue_timeout=30)
    await store.open()
    await migrate(store)

    async def write(n: int) -> None:
        async with store.transaction() as tx:
            await tx.execute(
                "INSERT INTO handled_requests (request_id, handled_at) VALUES (?, ?)",
                (f"r{n}", float(n)),
            )
            await asyncio.sleep(0.01)  # work between statements, as a service does

    try:
        await asyncio.gather(*(write(n) for n in range(60)))
        assert await _count(store, "handled_requests") == 60
    finally:
        await store.close()


async def test_unreachable_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    store = SqliteStore(f"sqlite:///{blocker}/chatops.db")
    with pytest.raises(StoreUnavailable):
        await store.open()
    await store.close()


@pytest.fixture
async def pg_admin(postgres_server: object) -> AsyncIterator[psycopg.AsyncConnection[object]]:
    conn = await psycopg.AsyncConnection.connect(postgres_server.dsn, autocommit=True)  # type: ignore[attr-defined]
    yield conn
    await conn.close()


async def test_postgres_outage_is_unavailable_at_once_even_with_a_long_queue(
    postgres_url: str, pg_admin: psycopg.AsyncConnection[object]
) -> None:
    """An outage must not be waited out like load: with a 5-minute queue bound, a database
    that refuses connections is still reported unavailable (after one wait slice)."""
    store = PostgresStore(postgres_url, max_size=2, timeout=0.5, queue_timeout=300)
    await store.open()
    dbname = postgres_url.rsplit("/", 1)[1]
    try:
        await pg_admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
        await pg_admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (dbname,),
        )
        for _ in range(2):  # the dead pooled connection, then the refused reconnection
            with pytest.raises(StoreUnavailable) as caught:
                async with store.transaction() as tx:
                    await tx.fetchone("SELECT 1 AS one")
            assert "PostgreSQL is unavailable" in str(caught.value)
        with pytest.raises(StoreUnavailable):
            await store.ping()
    finally:
        await pg_admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
        await store.close()


async def test_failed_and_empty_transactions_leave_the_connection_clean(store_url: str) -> None:
    """PostgreSQL sends BEGIN with a transaction's first statement (pipeline mode): a
    transaction that fails on that statement, fails later, or runs none must each end
    cleanly, so the one connection they share serves the next one as usual."""
    store = create_store(store_url, pool_size=1)
    await store.open()
    await migrate(store)
    insert = "INSERT INTO handled_requests (request_id, handled_at) VALUES (?, ?)"
    try:
        async with store.transaction():
            pass
        with pytest.raises(StoreError):
            async with store.transaction() as tx:
                await tx.fetchall("SELECT * FROM no_such_table")
        with pytest.raises(RuntimeError):
            async with store.transaction() as tx:
                await tx.execute(insert, ("gone", 1.0))
                raise RuntimeError("after the first statement")
        with pytest.raises(UniqueViolation):
            async with store.transaction() as tx:
                await tx.execute(insert, ("kept", 1.0))
                await tx.execute(insert, ("kept", 2.0))
        async with store.transaction() as tx:
            await tx.execute(insert, ("kept", 3.0))
        # A statement sent with the COMMIT (PostgreSQL: one round trip) commits with it, or
        # fails it whole.
        with pytest.raises(UniqueViolation):
            async with store.transaction() as tx:
                await tx.execute(insert, ("gone too", 4.0))
                await tx.execute_with_commit(insert, ("kept", 4.0))
        async with store.transaction() as tx:
            await tx.execute_with_commit(insert, ("with the commit", 5.0))
        async with store.transaction() as tx:
            rows = await tx.fetchall(
                "SELECT request_id, handled_at FROM handled_requests ORDER BY handled_at"
            )
        assert [(r["request_id"], r["handled_at"]) for r in rows] == [
            ("kept", 3.0),
            ("with the commit", 5.0),
        ]
    finally:
        await store.close()


@pytest.mark.postgres
async def test_transaction_control_is_never_a_prepared_statement(postgres_url: str) -> None:
    """BEGIN, COMMIT and ROLLBACK are sent by their text however often a connection runs
    them (psycopg prepares a statement run five times): a proxy that watches for a COMMIT,
    as tests/e2e/test_truthful_failures.py does, must see every one."""
    store = create_store(postgres_url, pool_size=1)
    await store.open()
    await migrate(store)
    try:
        for n in range(8):
            async with store.transaction() as tx:
                await tx.execute(
                    "INSERT INTO handled_requests (request_id, handled_at) VALUES (?, ?)",
                    (f"r{n}", 1.0),
                )
            with pytest.raises(RuntimeError):
                async with store.transaction() as tx:
                    await tx.fetchone("SELECT 1 AS one")
                    raise RuntimeError("rolled back")
        async with store.transaction() as tx:
            rows = await tx.fetchall("SELECT statement FROM pg_prepared_statements")
        prepared = {" ".join(row["statement"].split()).upper() for row in rows}
        assert any(sql.startswith("INSERT INTO HANDLED_REQUESTS") for sql in prepared)
        assert prepared.isdisjoint({"BEGIN", "COMMIT", "ROLLBACK"}), prepared
    finally:
        await store.close()


def _signal_begins(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set once a transaction's BEGIN starts in the SQLite store's thread (it runs unchanged)."""
    began = threading.Event()
    begin = sqlite_store._begin

    def signalling(statement: str) -> Callable[[sqlite3.Connection], sqlite3.Cursor]:
        work = begin(statement)

        def run(conn: sqlite3.Connection) -> sqlite3.Cursor:
            began.set()
            return work(conn)

        return run

    monkeypatch.setattr(sqlite_store, "_begin", signalling)
    return began


async def test_a_caller_cancelled_while_its_begin_waits_leaves_sqlite_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transaction cancelled while its BEGIN waits in the store's thread (here: for another
    process's write lock) goes without rolling back what that BEGIN then opens. Every later
    transaction failed with "cannot start a transaction within a transaction", so a cancel
    at the wrong moment (a handler's timeout, a stop) broke the store until a restart."""
    url = f"sqlite:///{tmp_path}/chatops.db"
    store = SqliteStore(url, queue_timeout=30)
    await store.open()
    await migrate(store)
    began = _signal_begins(monkeypatch)
    holding, release = asyncio.Event(), asyncio.Event()
    other = asyncio.create_task(_hold_sqlite(url, holding, release))
    try:
        await holding.wait()

        async def cancelled_write() -> None:
            async with store.transaction() as tx:
                await tx.execute(
                    "INSERT INTO handled_requests (request_id, handled_at) VALUES (?, ?)",
                    ("cancelled", 1.0),
                )

        waiting = asyncio.create_task(cancelled_write())
        # Its BEGIN IMMEDIATE now waits for the other's lock, in the store's thread (a fixed
        # 0.2 s could pass before the thread took it up on a busy machine: the cancel then
        # came first, and the test passed without a BEGIN to leave open).
        assert await asyncio.to_thread(began.wait, 10)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    finally:
        release.set()  # the BEGIN goes through in the thread, for nobody
        await other
    async with store.transaction() as tx:
        await tx.execute(
            "INSERT INTO handled_requests (request_id, handled_at) VALUES (?, ?)", ("next", 2.0)
        )
    async with store.snapshot() as tx:
        rows = await tx.fetchall("SELECT request_id FROM handled_requests")
    assert [row["request_id"] for row in rows] == ["next"]
    await store.close()
