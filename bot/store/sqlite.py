"""SQLite adapter: the embedded default. One connection, driven from one worker thread.

All writers are serialised (BEGIN IMMEDIATE plus an in-process lock), which is what makes
counters, hash chains and claims safe without row locks.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from bot.errors import StoreUnavailable
from bot.store.base import CommitHooks, Dialect, Row

T = TypeVar("T")


def sqlite_path(url: str) -> str:
    """`sqlite:///chatops.db` -> `chatops.db`; `sqlite:////abs/x.db` -> `/abs/x.db`."""
    path = url.removeprefix("sqlite://")
    if path.startswith("/"):
        path = path[1:]
    return path or ":memory:"


class SqliteTx(CommitHooks):
    dialect: Dialect = "sqlite"

    def __init__(self, store: SqliteStore) -> None:
        super().__init__()
        self._store = store

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await self._store._run(lambda conn: conn.execute(sql, tuple(params)).rowcount)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        def query(conn: sqlite3.Connection) -> Row | None:
            row = conn.execute(sql, tuple(params)).fetchone()
            return dict(row) if row is not None else None

        return await self._store._run(query)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return await self._store._run(
            lambda conn: [dict(row) for row in conn.execute(sql, tuple(params)).fetchall()]
        )


class SqliteStore:
    """Store on a SQLite file (or `:memory:`)."""

    dialect: Dialect = "sqlite"

    def __init__(self, url: str = "sqlite:///chatops.db") -> None:
        self.url = url
        self.path = sqlite_path(url)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        def connect() -> sqlite3.Connection:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 10000")
            if self.path != ":memory:":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA foreign_keys = ON")
            return conn

        if self._conn is None:
            try:
                self._conn = await asyncio.get_running_loop().run_in_executor(
                    self._executor, connect
                )
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"cannot open SQLite database {self.path}: {exc}") from exc

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            raise StoreUnavailable("the SQLite store is not open")
        conn = self._conn
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, lambda: work(conn)
            )
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite error: {exc}") from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteTx]:
        async with self._lock:
            await self._run(lambda conn: conn.execute("BEGIN IMMEDIATE"))
            tx = SqliteTx(self)
            try:
                yield tx
                await tx.run_before_commit()
            except BaseException:
                await self._run(lambda conn: conn.execute("ROLLBACK"))
                raise
            await self._run(lambda conn: conn.execute("COMMIT"))
        tx.run_after_commit()

    async def ping(self) -> None:
        await self._run(lambda conn: conn.execute("SELECT 1").fetchone())
