"""PostgreSQL adapter: psycopg 3 with an async connection pool (its statements on a connection:
bot.store.postgres_tx).

Load is not an outage. A transaction waits for a pooled connection in slices of `timeout`
seconds; after each slice it asks why it is still waiting. While connections are lent out (or
changed hands during the slice) and the database answered the last time it was asked, the
pool is busy: the transaction waits on, up to `queue_timeout`, and only then is refused with
StoreBusy. When the last attempt to reach the database failed, or no connection is lent out
and none changed hands for a whole slice, the database is down: StoreUnavailable at once, so
an outage is reported within one slice.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from bot.errors import StoreBusy, StoreError, StoreUnavailable, UniqueViolation
from bot.redact import redact_text
from bot.store.base import Dialect, Row
from bot.store.postgres_tx import PostgresAutocommit, PostgresTx, roll_back

# Errors of a busy or contended database (a cancelled statement, a lock not granted,
# a serialisation failure or deadlock): the database is up.
_CONTENTION = (
    pg_errors.QueryCanceled,
    pg_errors.LockNotAvailable,
    pg_errors.TransactionRollback,
    pg_errors.SerializationFailure,
    pg_errors.DeadlockDetected,
)

# A statement psycopg prepared on one server connection, sent by name on another: what a
# transaction-pooling PgBouncer does to a client that prepares.
_LOST_PREPARED = (
    pg_errors.InvalidSqlStatementName,
    pg_errors.DuplicatePreparedStatement,
    pg_errors.ProtocolViolation,
)
_PREPARED_NAME = '"_pg3_'
_POOLER_HINT = "Behind a transaction-pooling PgBouncer, set DATABASE_PREPARE=off"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return redact_text(lines[0]) if lines else type(exc).__name__


def _describe(exc: BaseException) -> str:
    return "PostgreSQL is unavailable: " + _first_line(exc)


class _Health:
    """What the last contact with the database said: None when it answered."""

    def __init__(self) -> None:
        self.failure: str | None = None

    def failed(self, exc: BaseException) -> None:
        self.failure = _describe(exc)

    def answered(self) -> None:
        self.failure = None


def _tracked_connection_class(health: _Health) -> type[psycopg.AsyncConnection[Any]]:
    """A connection class that tells `health` how each of the pool's connects went (the
    pool connects in the background and only logs its failures)."""

    class TrackedConnection(psycopg.AsyncConnection[Any]):
        @classmethod
        async def connect(cls, *args: Any, **kwargs: Any) -> TrackedConnection:
            try:
                conn = await super().connect(*args, **kwargs)
            except psycopg.Error as exc:
                health.failed(exc)
                raise
            health.answered()
            return conn

    return TrackedConnection


APP_NAME = "chatops-bot"


class PostgresStore:
    """Store on PostgreSQL through a pool of async connections.

    `max_size` connections at most; `timeout` is one slice of waiting for a connection (and
    how soon an outage is reported); `queue_timeout` bounds the whole wait under load, and so
    every other wait too (a slice never outlasts it: opening, the health check).
    `prepare=False` never prepares a statement on the server: behind a transaction-pooling
    PgBouncer each transaction may run on another server connection, which does not know
    the statements prepared on the last one.
    """

    dialect: Dialect = "postgres"

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 3.0,
        queue_timeout: float = 60.0,
        prepare: bool = True,
    ) -> None:
        self.url = url
        self.max_size = max_size
        # A slice longer than the whole bound would make /healthz and start-up wait past it.
        timeout = min(timeout, queue_timeout)
        self.timeout = timeout
        self.queue_timeout = queue_timeout
        self._health = _Health()
        self._in_use = 0  # connections lent out by this store
        self._last_handover = 0.0  # when one was last lent or given back
        self._waiting = 0  # callers waiting for a connection
        # Given back while callers waited: the pool hands each to one of them, who holds it
        # from then on, though the loop may not resume them for a while (a starved CPU, a
        # long collection). Such a connection is held, not idle.
        self._handed = 0
        self._pool = AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            open=False,
            # Named, so diagnostics of a shared server can tell the bot's sessions apart.
            kwargs={
                "row_factory": dict_row,
                "autocommit": True,
                "application_name": APP_NAME,
                # psycopg prepares a statement on its fifth run; None: never.
                "prepare_threshold": 5 if prepare else None,
            },
            connection_class=_tracked_connection_class(self._health),
        )

    async def open(self) -> None:
        try:
            await self._pool.open(wait=True, timeout=self.timeout)
        except (PoolTimeout, psycopg.Error) as exc:
            await self._pool.close()
            raise StoreUnavailable(self._health.failure or _describe(exc)) from exc

    async def close(self) -> None:
        await self._pool.close()

    def translate(self, exc: psycopg.Error) -> StoreError:
        """psycopg's error as the Store's (see bot.store.base)."""
        if isinstance(exc, _LOST_PREPARED) and _PREPARED_NAME in str(exc):
            # The database is up: a pooler gave this transaction another server connection.
            return StoreError(
                f"PostgreSQL rejected a statement: {_first_line(exc)}. {_POOLER_HINT}"
            )
        if isinstance(exc, pg_errors.UniqueViolation):
            return UniqueViolation(f"duplicate key: {_first_line(exc)}")
        if isinstance(exc, _CONTENTION):
            return StoreBusy(f"PostgreSQL is busy: {_first_line(exc)}")
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            self._health.failed(exc)
            return StoreUnavailable(_describe(exc))
        return StoreError(f"PostgreSQL rejected a statement: {_first_line(exc)}")

    @asynccontextmanager
    async def _connection(self, bound: float) -> AsyncIterator[psycopg.AsyncConnection[Row]]:
        """A pooled connection, waited for up to `bound` seconds while the pool is busy."""
        deadline = time.monotonic() + bound
        self._waiting += 1
        try:
            while True:
                remaining = deadline - time.monotonic()
                try:
                    conn = await self._pool.getconn(timeout=max(min(self.timeout, remaining), 0.01))
                    break
                except PoolTimeout as exc:
                    if self._health.failure is not None:
                        raise StoreUnavailable(self._health.failure) from exc
                    # Nobody holds a connection and none moved for a whole slice, yet none
                    # can be had: the pool cannot connect. (A connection between two holders
                    # counts as held: the one that had it just returned it.)
                    idle_for = time.monotonic() - self._last_handover
                    # One handed to a waiter not resumed yet is held too, for a few slices.
                    held = self._in_use or (self._handed and idle_for < 3 * self.timeout)
                    if not held and idle_for > self.timeout:
                        raise StoreUnavailable(_describe(exc)) from exc
                    if time.monotonic() >= deadline:
                        raise StoreBusy(
                            f"all {self.max_size} PostgreSQL connections stayed busy"
                            f" for {bound:g} s"
                        ) from exc
        finally:
            self._waiting -= 1
        self._handed = max(self._handed - 1, 0)
        self._in_use += 1
        self._last_handover = time.monotonic()
        try:
            yield conn
        finally:
            self._in_use -= 1
            if self._waiting:
                self._handed += 1
            self._last_handover = time.monotonic()
            await self._pool.putconn(conn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTx]:
        async with self._connection(self.queue_timeout) as conn:
            tx = PostgresTx(self, conn)
            try:
                try:
                    # BEGIN travels with the first statement: a round trip fewer for every
                    # transaction (psycopg's own transaction() sends it on its own).
                    tx.begin()
                    yield tx
                    await tx.run_before_commit()
                    await tx.commit()
                except BaseException:
                    await roll_back(tx)
                    raise
            except psycopg.Error as exc:
                raise self.translate(exc) from exc
            self._health.answered()
        tx.run_after_commit()

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[PostgresAutocommit]:
        async with self._connection(self.queue_timeout) as conn:
            yield PostgresAutocommit(self, conn)
        self._health.answered()

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[PostgresTx]:
        async with self._connection(self.queue_timeout) as conn:
            try:
                async with conn.transaction():
                    await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    yield PostgresTx(self, conn)
            except psycopg.Error as exc:
                raise self.translate(exc) from exc

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers; a busy pool answers for it."""
        try:
            async with self._connection(self.timeout) as conn:
                await conn.execute("SELECT 1")
        except StoreBusy:
            return  # every connection is at work on a database that answers
        except psycopg.Error as exc:
            raise self.translate(exc) from exc
        self._health.answered()
