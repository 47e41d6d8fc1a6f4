"""A customer PostgreSQL named by the catalog: connections with a timeout and a name.

Every session is labelled `application_name = chatops-bot ...` so the bot can leave its own
sessions out of what it reports; diagnostics open read-only sessions.

psycopg is imported on first use, not with this module: about 11 MB that a bot on SQLite
never needs until a diagnosis reaches a catalogued database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

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
# Every session the bot opens is named this (its store's) or this, a space and its purpose
# ("chatops-bot diagnose"); diagnostics leave such sessions out, remediations never end
# them. Only those names: "chatops-bot-exporter" or "chatops-botany" is another app's, was
# hidden from every diagnosis and could never be ended.
BOT_APPLICATION_PREFIX = "chatops-bot"
# The same rule in SQL (`%%`: psycopg's escaped %), for the lists of other sessions.
NOT_THE_BOTS_SQL = (
    f"coalesce(application_name, '') <> '{BOT_APPLICATION_PREFIX}'"
    f" AND coalesce(application_name, '') NOT LIKE '{BOT_APPLICATION_PREFIX} %%'"
)


def is_bots_application(app: str) -> bool:
    """Whether an application_name is one the bot gives its own sessions."""
    return app == BOT_APPLICATION_PREFIX or app.startswith(f"{BOT_APPLICATION_PREFIX} ")


Row = dict[str, Any]
_T = TypeVar("_T")
# After the socket is shut down, how long the abandoned query may take to notice (at once).
_ABANDON_WAIT_S = 0.5
# What PgBouncer answers a connect with `options` (unless ignore_startup_parameters lists it).
_POOLER_REFUSES_OPTIONS = "unsupported startup parameter: options"


def left_alone(row: Row, target: PostgresTarget) -> str | None:
    """Why remediation must not end this backend, or None: one rule for the diagnosis that
    names a backend and the executor that would end it. `row` carries `is_self`, `app`,
    `backend_type` and `superuser` (rolsuper of its role)."""
    if row.get("is_self") or is_bots_application(str(row.get("app") or "")):
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
    TargetTimeout (the server's statement_timeout cannot help when the network is gone).

    At the limit the connection is given up at once: psycopg, cancelled mid-query, would
    send a cancel request and wait up to 5 s for it, then 5 s more for the query to end.

    `per_statement`: SET commands to run before each statement, in a transaction of its
    own (the session's limits, behind a pooler that refuses them at connect): a
    transaction-pooling PgBouncer may run each transaction on another server connection."""

    def __init__(
        self,
        conn: psycopg.AsyncConnection[Row],
        timeout: float,
        *,
        per_statement: str | None = None,
    ) -> None:
        self._conn = conn
        self._timeout = timeout
        self._per_statement = per_statement

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        import psycopg

        async def run() -> list[Row]:
            if self._per_statement is None:
                cursor = await self._conn.execute(sql, params)
                return await cursor.fetchall()
            # BEGIN and the SETs as one simple query: one round trip more, not three.
            await self._conn.execute(self._per_statement)
            try:
                cursor = await self._conn.execute(sql, params)
                # No rows to fetch from a command (execute() comes here too).
                rows = await cursor.fetchall() if cursor.description is not None else []
            except psycopg.Error:
                with contextlib.suppress(psycopg.Error):  # the connection may be gone
                    await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")
            return rows

        return await self._bounded(run())

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if self._per_statement is not None:
            await self.fetchall(sql, params)  # in its transaction, with the limits
            return

        async def run() -> None:
            await self._conn.execute(sql, params)

        await self._bounded(run())

    async def _bounded(self, work: Coroutine[Any, Any, _T]) -> _T:
        import psycopg

        if self._conn.closed:  # given up earlier: never reuse a connection left mid-query
            raise TargetUnavailable(SYSTEM, "the connection was closed after an earlier failure")
        task = asyncio.create_task(work)
        try:
            done, _ = await asyncio.wait({task}, timeout=self._timeout)
        finally:
            if not task.done():  # the limit passed, or our caller was cancelled
                await self._abandon(task)
        try:
            if not done:
                raise TargetTimeout(
                    SYSTEM,
                    f"no answer after {self._timeout:g} s, so the bot closed that connection",
                )
            return task.result()
        except psycopg.Error as exc:
            raise translate(exc) from exc

    async def _abandon(self, task: asyncio.Task[Any]) -> None:
        """End the connection without a word to the server: shutting the socket down wakes
        the waiting query with an error at once (no cancel request, no wait for one). The
        server's statement_timeout still ends whatever of ours it was running."""
        import psycopg

        with contextlib.suppress(OSError, psycopg.Error):  # psycopg's: no socket left to shut
            fd = self._conn.fileno()
            with socket.socket(fileno=os.dup(fd)) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        try:
            await asyncio.wait({task}, timeout=_ABANDON_WAIT_S)
        finally:  # even when cancelled again meanwhile
            await self._conn.close()
            if not task.done():
                task.cancel()  # the connection is finished: psycopg has nothing to cancel
            task.add_done_callback(_retrieve)


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark an abandoned query's error as seen: the caller already has TargetTimeout."""
    if not task.cancelled():
        task.exception()


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

        dsn = dsn_for(self.target)
        statement_ms = max(1, int(self.timeout * 1000))
        options = f"-c statement_timeout={statement_ms} -c lock_timeout={statement_ms}"
        if read_only:
            options += " -c default_transaction_read_only=on"
        per_statement = None
        try:
            async with asyncio.timeout(self.timeout + 1):
                try:
                    conn = await self._connect(dsn, options=options)
                except psycopg.OperationalError as exc:
                    if _POOLER_REFUSES_OPTIONS not in str(exc):
                        raise
                    # PgBouncer: the same limits, set in each statement's own transaction.
                    conn = await self._connect(dsn, prepare_threshold=None)
                    per_statement = (
                        ("BEGIN READ ONLY" if read_only else "BEGIN")
                        + f"; SET LOCAL statement_timeout = {statement_ms}"
                        + f"; SET LOCAL lock_timeout = {statement_ms}"
                    )
        except (psycopg.Error, OSError, TimeoutError) as exc:
            raise translate(exc) from None
        try:
            # A second more than the server's statement_timeout, whose own answer says more.
            yield PostgresSession(conn, self.timeout + 1, per_statement=per_statement)
        finally:
            await conn.close()

    async def _connect(self, dsn: str, **kwargs: Any) -> psycopg.AsyncConnection[Row]:
        import psycopg
        from psycopg.rows import dict_row

        return await psycopg.AsyncConnection.connect(
            dsn,
            autocommit=True,
            row_factory=dict_row,
            connect_timeout=max(2, int(self.timeout)),
            application_name=self.application_name,
            **kwargs,
        )
