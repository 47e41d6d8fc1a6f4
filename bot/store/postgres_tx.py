"""PostgreSQL statements on one pooled connection: a transaction (BEGIN held back and sent
with the first statement, writes held for the COMMIT, pipelined in one round trip) and
autocommit statements. psycopg's errors are translated by the store (bot.store.postgres)."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.pq import TransactionStatus

from bot.errors import StoreError
from bot.store.base import CommitHooks, Dialect, Row, commit_log

if TYPE_CHECKING:
    from bot.store.postgres import PostgresStore

_PLACEHOLDER = re.compile(r"\?")


@functools.lru_cache(maxsize=1024)  # the same few hundred texts, about 20 a declaration
def to_pyformat(sql: str) -> str:
    """Our portable SQL uses `?`; psycopg wants `%s` (and a literal % doubled)."""
    return _PLACEHOLDER.sub("%s", sql.replace("%", "%%"))


class _Fetches:
    """fetchone and fetchall over a statement runner, psycopg's errors translated."""

    _store: PostgresStore

    async def _run(self, sql: str, params: Sequence[Any]) -> psycopg.AsyncCursor[Row]:
        raise NotImplementedError

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        cursor = await self._run(sql, params)
        try:
            return await cursor.fetchone()
        except psycopg.Error as exc:
            raise self._store.translate(exc) from exc

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = await self._run(sql, params)
        try:
            return await cursor.fetchall()
        except psycopg.Error as exc:
            raise self._store.translate(exc) from exc


class PostgresTx(_Fetches, CommitHooks):
    dialect: Dialect = "postgres"

    def __init__(self, store: PostgresStore, conn: psycopg.AsyncConnection[Row]) -> None:
        super().__init__()
        self._store = store
        self._conn = conn
        # Statements sent with the next one that needs an answer (BEGIN, execute_nowait's),
        # as (text, parameters); None parameters: BEGIN or COMMIT, sent unprepared.
        self._unsent: list[tuple[str, tuple[Any, ...] | None]] = []
        self._with_commit: list[tuple[str, tuple[Any, ...]]] = []
        self._failed: StoreError | None = None  # an unanswered statement's error

    # BEGIN, COMMIT and ROLLBACK are sent as statements here, never prepared (psycopg
    # prepares a statement run five times on a connection, and then sends only its name):
    # as psycopg's own transaction() sends them, by their text, so a connection's traffic
    # (a proxy, a packet capture, tests/e2e/test_truthful_failures.py) still shows each.

    def begin(self) -> None:
        """Hold BEGIN back: it goes with the first statement, one round trip for both."""
        self._unsent.append(("BEGIN", None))

    async def execute_nowait(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.wrote = True
        self._unsent.append((to_pyformat(sql), tuple(params)))

    async def execute_with_commit(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.wrote = True
        self._with_commit.append((to_pyformat(sql), tuple(params)))

    async def _send(self, sql: str, params: tuple[Any, ...] | None) -> psycopg.AsyncCursor[Row]:
        if params is None:
            return await self._conn.execute(sql, prepare=False)
        return await self._conn.execute(sql, params)

    async def _run_after_unsent(
        self, *statements: tuple[str, tuple[Any, ...] | None]
    ) -> psycopg.AsyncCursor[Row] | None:
        """Send the held statements and then `statements`, in one round trip (pipeline mode
        when more than one); the cursor of the last. An error sent with a held write fails
        the whole transaction: it is kept and raised again by every later statement and the
        commit, so a caller that handles the error of its own statement cannot commit (a
        COMMIT of a failed transaction would quietly roll it back)."""
        if self._failed is not None:
            raise self._failed
        unsent, self._unsent = self._unsent, []
        queue = [*unsent, *statements]
        cursor = None
        try:
            if len(queue) == 1:
                return await self._send(*queue[0])
            if queue:
                async with self._conn.pipeline():
                    for sql, params in queue:
                        cursor = await self._send(sql, params)
        except psycopg.Error as exc:
            error = self._store.translate(exc)
            if any(params is not None for _, params in unsent):  # a write was held back
                self._failed = error
            raise error from exc
        return cursor

    async def commit(self) -> None:
        """COMMIT, with the statements held for it, in one round trip."""
        statements, self._with_commit = self._with_commit, []
        await self._run_after_unsent(*statements, ("COMMIT", None))

    async def _run(self, sql: str, params: Sequence[Any]) -> psycopg.AsyncCursor[Row]:
        cursor = await self._run_after_unsent((to_pyformat(sql), tuple(params)))
        assert cursor is not None
        return cursor

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self.wrote = True
        return (await self._run(sql, params)).rowcount

    async def execute_script(self, sql: str) -> None:
        # Without parameters psycopg sends the text as one simple query: PostgreSQL splits it
        # itself, so dollar-quoted function bodies and DO blocks arrive whole. Not in
        # pipeline mode (which has no simple queries): what is held back goes first.
        await self._run_after_unsent()
        try:
            await self._conn.execute(sql)
        except psycopg.Error as exc:
            raise self._store.translate(exc) from exc


class PostgresAutocommit(_Fetches):
    """Statements without a transaction (Store.autocommit): each commits on its own, in one
    round trip, on a pooled connection in autocommit mode."""

    dialect: Dialect = "postgres"

    def __init__(self, store: PostgresStore, conn: psycopg.AsyncConnection[Row]) -> None:
        self._store = store
        self._conn = conn

    async def _run(self, sql: str, params: Sequence[Any]) -> psycopg.AsyncCursor[Row]:
        if "FOR UPDATE" in sql:
            raise StoreError("a row lock outside a transaction ends at once: use transaction()")
        try:
            return await self._conn.execute(to_pyformat(sql), tuple(params))
        except psycopg.Error as exc:
            raise self._store.translate(exc) from exc

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        # A write commits as it runs: counted as a transaction's would be (bot.store.base).
        log = commit_log.get()
        if log is not None:
            log.sent += 1
        cursor = await self._run(sql, params)
        if log is not None:
            log.committed += 1
        return cursor.rowcount


async def roll_back(tx: PostgresTx) -> None:
    """End a failed transaction; a connection left mid-statement (cancelled) is the pool's
    to discard, and an error here must not hide the one that ended the transaction."""
    tx._unsent = []  # never sent (a BEGIN not sent has nothing to roll back)
    conn = tx._conn
    if conn.pgconn.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
        try:
            await conn.execute("ROLLBACK", prepare=False)
        except psycopg.Error:
            pass  # the pool discards a connection it cannot reset
