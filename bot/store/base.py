"""The Store port: transactions over a relational database.

Contract (both adapters honour it; tests/contract runs the same suite against each):

- `transaction()` is an async context manager yielding a `Tx`. Everything done through one Tx
  commits together when the block exits normally and rolls back when it raises. Domain
  modules (incidents, audit, outbox, escalation...) keep their SQL next to their logic and run
  it through a Tx, so a state change and its audit entry always share one transaction.
- SQL is written once, in the portable subset both databases accept, with `?` placeholders.
  `Tx.dialect` ("sqlite" or "postgres") lets a query add a dialect-only clause such as
  `FOR UPDATE` where it matters for correctness between processes.
- Rows come back as dicts keyed by column name.
- Any failure of the database itself is raised as `StoreUnavailable` (never a driver error);
  a transaction that raised has changed nothing.
- Timestamps are stored as UTC epoch seconds (DOUBLE PRECISION), JSON as TEXT.
- `Tx.before_commit(hook)` runs an async hook inside the transaction just before it commits
  (hooks run in the order registered; one that raises rolls the whole transaction back).
  `Tx.after_commit(hook)` runs a plain callable once the commit has succeeded (never on
  rollback), so nothing is scheduled or kicked before its row is visible to others.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, Protocol

logger = logging.getLogger(__name__)

Dialect = Literal["sqlite", "postgres"]
Row = dict[str, Any]


class Tx(Protocol):
    """One open transaction."""

    dialect: Dialect

    def before_commit(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run `hook` inside this transaction, just before it commits."""
        ...

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run `hook` after this transaction has committed (never after a rollback)."""
        ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; return the number of rows it changed."""
        ...

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """Run a query; return its first row or None."""
        ...

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run a query; return all rows."""
        ...


class Store(Protocol):
    """A database the bot keeps its state in."""

    dialect: Dialect

    async def open(self) -> None:
        """Connect (and create the database file for SQLite). Raises StoreUnavailable."""
        ...

    async def close(self) -> None: ...

    def transaction(self) -> AbstractAsyncContextManager[Tx]:
        """Begin a write transaction (serialised with other writers where it matters)."""
        ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers."""
        ...


def for_update(tx: Tx) -> str:
    """Row-lock clause: PostgreSQL needs it between processes; SQLite serialises all writers."""
    return " FOR UPDATE" if tx.dialect == "postgres" else ""


def skip_locked(tx: Tx) -> str:
    return " FOR UPDATE SKIP LOCKED" if tx.dialect == "postgres" else ""


class CommitHooks:
    """The before/after-commit hooks of one transaction; adapters mix it into their Tx."""

    def __init__(self) -> None:
        self._before: list[Callable[[], Awaitable[None]]] = []
        self._after: list[Callable[[], None]] = []

    def before_commit(self, hook: Callable[[], Awaitable[None]]) -> None:
        self._before.append(hook)

    def after_commit(self, hook: Callable[[], None]) -> None:
        self._after.append(hook)

    async def run_before_commit(self) -> None:
        # A hook may register another (the audit chainer after a journal line): run until none.
        while self._before:
            hook = self._before.pop(0)
            await hook()

    def run_after_commit(self) -> None:
        hooks, self._after = self._after, []
        for hook in hooks:
            try:
                hook()
            except Exception:  # the commit stands; a failed kick is caught up by polling
                logger.exception("after-commit hook failed")
