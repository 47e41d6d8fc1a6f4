"""PostgreSQL adapter: psycopg 3 with an async connection pool."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from bot.errors import StoreUnavailable
from bot.redact import redact_text
from bot.store.base import CommitHooks, Dialect, Row

_PLACEHOLDER = re.compile(r"\?")


def to_pyformat(sql: str) -> str:
    """Our portable SQL uses `?`; psycopg wants `%s` (and a literal % doubled)."""
    return _PLACEHOLDER.sub("%s", sql.replace("%", "%%"))


class PostgresTx(CommitHooks):
    dialect: Dialect = "postgres"

    def __init__(self, conn: psycopg.AsyncConnection[Row]) -> None:
        super().__init__()
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        try:
            cursor = await self._conn.execute(to_pyformat(sql), tuple(params))
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(_describe(exc)) from exc
        return cursor.rowcount

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        try:
            cursor = await self._conn.execute(to_pyformat(sql), tuple(params))
            return await cursor.fetchone()
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(_describe(exc)) from exc

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        try:
            cursor = await self._conn.execute(to_pyformat(sql), tuple(params))
            return await cursor.fetchall()
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(_describe(exc)) from exc


APP_NAME = "chatops-bot"


def _describe(exc: BaseException) -> str:
    return "PostgreSQL is unavailable: " + redact_text(str(exc).strip().splitlines()[0])


class PostgresStore:
    """Store on PostgreSQL through a pool of async connections."""

    dialect: Dialect = "postgres"

    def __init__(
        self, url: str, *, min_size: int = 1, max_size: int = 10, timeout: float = 3.0
    ) -> None:
        self.url = url
        self._pool = AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            open=False,
            # Named, so diagnostics of a shared server can tell the bot's sessions apart.
            kwargs={"row_factory": dict_row, "autocommit": True, "application_name": APP_NAME},
        )

    async def open(self) -> None:
        try:
            await self._pool.open(wait=True, timeout=self._pool.timeout)
        except (PoolTimeout, psycopg.Error) as exc:
            await self._pool.close()
            raise StoreUnavailable(_describe(exc)) from exc

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTx]:
        try:
            async with self._pool.connection() as conn:
                async with conn.transaction():
                    tx = PostgresTx(conn)
                    yield tx
                    await tx.run_before_commit()
                tx.run_after_commit()
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise StoreUnavailable(_describe(exc)) from exc

    async def ping(self) -> None:
        async with self.transaction() as tx:
            await tx.fetchone("SELECT 1 AS ok")
