"""A customer PostgreSQL named by the catalog: connections with a timeout and a name.

Every session is labelled `application_name = chatops-bot ...` so the bot can leave its own
sessions out of what it reports; diagnostics open read-only sessions.

psycopg is imported on first use, not with this module: about 11 MB that a bot on SQLite
never needs until a diagnosis reaches a catalogued database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from bot.catalog import PostgresTarget
from bot.targets.errors import (
    TargetDenied,
    TargetError,
    TargetTimeout,
    TargetUnavailable,
    from_environment,
)

if TYPE_CHECKING:
    import psycopg

SYSTEM = "postgres"
# Every session the bot opens starts with this; diagnostics leave such sessions out.
BOT_APPLICATION_PREFIX = "chatops-bot"
Row = dict[str, Any]


def left_alone(row: Row, target: PostgresTarget) -> str | None:
    """Why remediation must not end this backend, or None: one rule for the diagnosis that
    names a backend and the executor that would end it. `row` carries `is_self`, `app`,
    `backend_type` and `superuser` (rolsuper of its role)."""
    if row.get("is_self") or str(row.get("app") or "").startswith(BOT_APPLICATION_PREFIX):
        return "the bot's own"
    if row.get("backend_type") == "walsender" and not target.terminate_replication:
        return "replication"
    if row.get("superuser") and not target.terminate_superuser:
        return "superuser"
    return None


def dsn_for(target: PostgresTarget) -> str:
    """The DSN from the environment variable the catalog names (never from the catalog)."""
    return from_environment(SYSTEM, target.dsn_env)


def translate(exc: BaseException) -> TargetError:
    """psycopg's errors as TargetErrors; the one place that knows psycopg's hierarchy."""
    import psycopg

    if isinstance(exc, TargetError):
        return exc
    if isinstance(exc, TimeoutError | psycopg.errors.QueryCanceled):
        return TargetTimeout(SYSTEM, "no answer in time (statement or connect timeout)")
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(
        exc,
        psycopg.errors.InvalidPassword
        | psycopg.errors.InvalidAuthorizationSpecification
        | psycopg.errors.InsufficientPrivilege,
    ):
        return TargetDenied(SYSTEM, message)
    return TargetUnavailable(SYSTEM, message)


class PostgresSession:
    """One open session: run statements, rows as dicts, each answered within `timeout` or
    TargetTimeout (the server's statement_timeout cannot help when the network is gone)."""

    def __init__(self, conn: psycopg.AsyncConnection[Row], timeout: float) -> None:
        self._conn = conn
        self._timeout = timeout

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        import psycopg

        try:
            async with asyncio.timeout(self._timeout):
                cursor = await self._conn.execute(sql, params)
                return await cursor.fetchall()
        except (psycopg.Error, TimeoutError) as exc:
            raise translate(exc) from exc

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        import psycopg

        try:
            async with asyncio.timeout(self._timeout):
                await self._conn.execute(sql, params)
        except (psycopg.Error, TimeoutError) as exc:
            raise translate(exc) from exc


class PostgresClient:
    """Sessions on the catalogued database, each bounded by the entry's timeout."""

    def __init__(self, target: PostgresTarget, *, purpose: str = "diagnose") -> None:
        self.target = target
        self.application_name = f"{BOT_APPLICATION_PREFIX} {purpose}"

    @property
    def timeout(self) -> float:
        return self.target.timeout.seconds

    @asynccontextmanager
    async def session(self, *, read_only: bool = True) -> AsyncIterator[PostgresSession]:
        """An autocommit session; `read_only` sessions cannot change anything."""
        import psycopg
        from psycopg.rows import dict_row

        dsn = dsn_for(self.target)
        statement_ms = max(1, int(self.timeout * 1000))
        options = f"-c statement_timeout={statement_ms} -c lock_timeout={statement_ms}"
        if read_only:
            options += " -c default_transaction_read_only=on"
        try:
            async with asyncio.timeout(self.timeout + 1):
                conn = await psycopg.AsyncConnection.connect(
                    dsn,
                    autocommit=True,
                    row_factory=dict_row,
                    connect_timeout=max(2, int(self.timeout)),
                    application_name=self.application_name,
                    options=options,
                )
        except (psycopg.Error, OSError, TimeoutError) as exc:
            raise translate(exc) from None
        try:
            # A second more than the server's statement_timeout, whose own answer says more.
            yield PostgresSession(conn, self.timeout + 1)
        finally:
            await conn.close()
