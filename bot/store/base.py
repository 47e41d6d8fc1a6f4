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
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, Protocol

Dialect = Literal["sqlite", "postgres"]
Row = dict[str, Any]


class Tx(Protocol):
    """One open transaction."""

    dialect: Dialect

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
