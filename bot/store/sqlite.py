"""SQLite adapter: the embedded default. One connection, driven from one worker thread.

All writers are serialised (BEGIN IMMEDIATE plus an in-process lock), which is what makes
counters, hash chains and claims safe without row locks. A snapshot reads on a second
connection, so a long read (`audit verify`) never holds the writers up.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from bot.errors import StoreBusy, StoreError, StoreUnavailable, UniqueViolation
from bot.store.base import CommitHooks, Dialect, Row

T = TypeVar("T")

log = logging.getLogger(__name__)

# Primary result codes (the low byte of sqlite_errorcode) that mean "the file is not usable".
_UNUSABLE = {
    sqlite3.SQLITE_PERM,
    sqlite3.SQLITE_NOMEM,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_CORRUPT,
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_NOTADB,
}
_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_DUPLICATE_KEY = {"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"}


def sqlite_path(url: str) -> str:
    """`sqlite:///chatops.db` -> `chatops.db`; `sqlite:////abs/x.db` -> `/abs/x.db`;
    `sqlite:///~/x.db` -> `$HOME/x.db` (as a shell would: not a directory named `~`)."""
    path = url.removeprefix("sqlite://")
    if path.startswith("/"):
        path = path[1:]
    return os.path.expanduser(path) or ":memory:"


def translate(exc: sqlite3.Error) -> StoreError:
    """sqlite3's error as the Store's (see bot.store.base)."""
    code = getattr(exc, "sqlite_errorcode", None)
    name = getattr(exc, "sqlite_errorname", "")
    if name in _DUPLICATE_KEY:
        return UniqueViolation(f"duplicate key: {exc}")
    if code is not None and code & 0xFF in _BUSY:
        return StoreBusy(f"the SQLite database stayed busy (locked by another process): {exc}")
    if (code is not None and code & 0xFF in _UNUSABLE) or "closed database" in str(exc):
        return StoreUnavailable(f"SQLite error: {exc}")
    return StoreError(f"SQLite rejected a statement: {exc}")


def script_statements(script: str) -> list[str]:
    """Split a script where SQLite itself would: at a `;` that ends a complete statement.

    Unlike splitting on every `;`, this keeps a trigger body (BEGIN ... ; ... END;), a string
    or a comment holding a semicolon whole. (sqlite3's executescript would do the splitting
    too, but it commits any open transaction first: a migration must stay in one.)
    """
    statements: list[str] = []
    start = 0
    for position, char in enumerate(script):
        if char == ";" and sqlite3.complete_statement(script[start : position + 1]):
            statements.append(script[start : position + 1].strip())
            start = position + 1
    rest = "\n".join(
        line for line in script[start:].splitlines() if not line.strip().startswith("--")
    ).strip()
    if rest:
        statements.append(rest)  # an unfinished statement: let SQLite say what is wrong
    return statements


def _begin(statement: str) -> Callable[[sqlite3.Connection], sqlite3.Cursor]:
    """`statement` (a BEGIN), after rolling back a transaction a cancelled caller left open.

    Statements run in the store's thread: a caller cancelled while its BEGIN, COMMIT or
    ROLLBACK was on its way there goes without knowing whether it ran, and the connection
    can be left inside its transaction. The lock is ours when this runs, so any transaction
    open now is such a leftover; without this, every later BEGIN failed ("cannot start a
    transaction within a transaction") until the process restarted."""

    def begin(conn: sqlite3.Connection) -> sqlite3.Cursor:
        if conn.in_transaction:
            log.warning("SQLite: rolled back a transaction left open by a cancelled caller")
            conn.execute("ROLLBACK")
        return conn.execute(statement)

    return begin


class SqliteTx(CommitHooks):
    dialect: Dialect = "sqlite"

    def __init__(self, store: SqliteStore, conn: sqlite3.Connection | None = None) -> None:
        super().__init__()
        self._store = store
        self._conn = conn  # None: the store's writer connection

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await self._store._run(work, self._conn)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self.wrote = True
        return await self._run(lambda conn: conn.execute(sql, tuple(params)).rowcount)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        def query(conn: sqlite3.Connection) -> Row | None:
            row = conn.execute(sql, tuple(params)).fetchone()
            return dict(row) if row is not None else None

        return await self._run(query)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return await self._run(
            lambda conn: [dict(row) for row in conn.execute(sql, tuple(params)).fetchall()]
        )

    async def execute_with_commit(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self.execute(sql, params)  # no round trip to save in-process

    async def execute_nowait(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self.execute(sql, params)  # no round trip to save in-process

    async def execute_script(self, sql: str) -> None:
        def run_all(conn: sqlite3.Connection) -> None:
            for statement in script_statements(sql):
                conn.execute(statement)

        await self._run(run_all)


class SqliteStore:
    """Store on a SQLite file (or `:memory:`)."""

    dialect: Dialect = "sqlite"

    def __init__(self, url: str = "sqlite:///chatops.db", *, queue_timeout: float = 60.0) -> None:
        self.url = url
        self.path = sqlite_path(url)
        # How long a transaction waits for the write lock (this process's and the file's).
        self.queue_timeout = queue_timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._conn: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        self._reader_lock = asyncio.Lock()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(self.queue_timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    async def open(self) -> None:
        def connect() -> sqlite3.Connection:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = self._connect()
            if self.path != ":memory:":
                conn.execute("PRAGMA journal_mode = WAL")
            return conn

        if self._conn is None:
            try:
                self._conn = await asyncio.get_running_loop().run_in_executor(
                    self._executor, connect
                )
            except (sqlite3.Error, OSError) as exc:
                raise StoreUnavailable(f"cannot open SQLite database {self.path}: {exc}") from exc

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for conn in (self._reader, self._conn):
            if conn is not None:
                await loop.run_in_executor(self._executor, conn.close)
        self._conn = self._reader = None
        self._executor.shutdown(wait=True)

    async def _run(
        self, work: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection | None = None
    ) -> T:
        conn = conn or self._conn
        if conn is None:
            raise StoreUnavailable("the SQLite store is not open")
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, lambda: work(conn)
            )
        except sqlite3.Error as exc:
            raise translate(exc) from exc

    async def _acquire(self, lock: asyncio.Lock) -> None:
        try:
            async with asyncio.timeout(self.queue_timeout):
                await lock.acquire()
        except TimeoutError:
            raise StoreBusy(
                f"the SQLite database stayed busy for {self.queue_timeout:g} s"
            ) from None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteTx]:
        await self._acquire(self._lock)
        try:
            await self._run(_begin("BEGIN IMMEDIATE"))
            tx = SqliteTx(self)
            try:
                yield tx
                await tx.run_before_commit()
            except BaseException:
                await self._run(lambda conn: conn.execute("ROLLBACK"))
                raise
            await self._run(lambda conn: conn.execute("COMMIT"))
        finally:
            self._lock.release()
        tx.run_after_commit()

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[SqliteTx]:
        # No round trip to save in-process: a transaction, as before (holding the writers).
        async with self.transaction() as tx:
            yield tx

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[SqliteTx]:
        if self.path == ":memory:":
            # One in-memory database per connection: read on the writer's, holding writers.
            async with self.transaction() as tx:
                yield tx
            return
        await self._acquire(self._reader_lock)
        try:
            if self._reader is None:
                self._reader = await self._run(lambda _: self._connect())
                await self._run(lambda conn: conn.execute("PRAGMA query_only = ON"), self._reader)
            reader = self._reader
            # A deferred BEGIN takes its WAL snapshot at the first read: read at once.
            await self._run(
                lambda conn: _begin("BEGIN")(conn).execute("SELECT COUNT(*) FROM sqlite_master"),
                reader,
            )
            try:
                yield SqliteTx(self, reader)
            finally:
                await self._run(lambda conn: conn.execute("ROLLBACK"), reader)
        finally:
            self._reader_lock.release()

    async def ping(self) -> None:
        await self._run(lambda conn: conn.execute("SELECT 1").fetchone())
