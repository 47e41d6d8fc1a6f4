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
- Errors are the bot's own, never a driver's (bot.errors, all StoreError):
  `StoreUnavailable` when the database cannot be reached; `StoreBusy` when it is up but no
  connection (or, on SQLite, the write lock) came free within the store's wait bound
  (`queue_timeout`, 60 s by default): load is waited out, and only a wait past that bound is
  refused, as busy, never as an outage; `UniqueViolation` for a duplicate unique key; plain
  `StoreError` for a statement the database rejected. A transaction that raised has changed
  nothing, and one whose statement raised must not go on (PostgreSQL aborts it).
- Timestamps are stored as UTC epoch seconds (DOUBLE PRECISION), JSON as TEXT.
- `Tx.before_commit(hook)` runs an async hook inside the transaction just before it commits
  (hooks run in the order registered, those registered with `last=True` after all others;
  one that raises rolls the whole transaction back). `Tx.after_commit(hook)` runs a plain
  callable once the commit has succeeded (never on rollback), so nothing is scheduled or
  kicked before its row is visible to others.
- While a `CommitLog` is set in `commit_log` (commands.context.run_command sets one per
  command), every transaction that ran `execute()` counts itself in it when its COMMIT is
  sent and when it has committed: a failure can then tell "nothing was changed" from "a
  change may stand" (the adapters set `Tx.wrote` in `execute`).
- `snapshot()` is a read-only transaction that sees one consistent state of the whole
  database however long it lasts, while writers go on (PostgreSQL: REPEATABLE READ; SQLite:
  a read transaction on a connection of its own, WAL mode).
- `Tx.execute_script(sql)` runs a multi-statement script (no parameters) inside the
  transaction, function bodies and DO blocks included: migrations use it.
- `Tx.execute_with_commit(sql, params)` runs a statement by the COMMIT at the latest;
  PostgreSQL sends it with the COMMIT in one round trip (the audit chain's write). PostgreSQL
  also sends a transaction's BEGIN with its first statement.
- `Tx.execute_nowait(sql, params)` runs a write whose result nobody reads without waiting
  for it: PostgreSQL sends it with the transaction's next statement that needs an answer (or
  with the COMMIT), in one round trip. Its error still fails the transaction, translated as
  any other (raised by that next statement, and again by the commit: nothing is committed).
  Never for a statement whose error a caller handles (a UniqueViolation it catches).
- `autocommit()` runs statements without a transaction: each one commits (or fails) on its
  own. PostgreSQL runs them on a pooled connection in autocommit mode, one round trip each,
  no BEGIN or COMMIT; SQLite runs them in a transaction as `transaction()` does. For one
  statement that stands alone (a read of one row, one UPDATE), or reads that need no common
  snapshot (READ COMMITTED gives each statement its own anyway). Not for several writes that
  must stand or fall together, nor a row lock (FOR UPDATE is refused: it would end at once).
  Same errors, waiting and health rules as `transaction()`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal, Protocol

logger = logging.getLogger(__name__)

Dialect = Literal["sqlite", "postgres"]
Row = dict[str, Any]


class Statements(Protocol):
    """Something that runs statements: a transaction (`Tx`), or `Store.autocommit()`."""

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


class Tx(Statements, Protocol):
    """One open transaction."""

    def before_commit(self, hook: Callable[[], Awaitable[None]], *, last: bool = False) -> None:
        """Run `hook` inside this transaction, just before it commits (`last`: after others)."""
        ...

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run `hook` after this transaction has committed (never after a rollback)."""
        ...

    async def execute_nowait(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run a write whose result nobody reads, without waiting for its answer: PostgreSQL
        sends it with this transaction's next statement (or COMMIT). Its error fails the
        transaction there; never for a statement whose error a caller handles."""
        ...

    async def execute_script(self, sql: str) -> None:
        """Run several statements (no parameters) as they are written, in this transaction."""
        ...

    async def execute_with_commit(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run a statement whose count nobody needs by the COMMIT at the latest (after every
        statement run otherwise): PostgreSQL sends it with the COMMIT, one round trip for
        both. For the last before-commit hook (the audit chain's write under its lock)."""
        ...


class Store(Protocol):
    """A database the bot keeps its state in."""

    dialect: Dialect

    async def open(self) -> None:
        """Connect (and create the database file for SQLite). Raises StoreUnavailable."""
        ...

    async def close(self) -> None: ...

    def transaction(self) -> AbstractAsyncContextManager[Tx]:
        """Begin a write transaction (serialised with other writers where it matters).

        Waits for a connection up to the store's wait bound; StoreBusy past it."""
        ...

    def autocommit(self) -> AbstractAsyncContextManager[Statements]:
        """Run statements without a transaction, each committed on its own (PostgreSQL: one
        round trip each, no BEGIN/COMMIT; SQLite: in a transaction, as before). For a lone
        statement; never for writes that must stand together, nor FOR UPDATE."""
        ...

    def snapshot(self) -> AbstractAsyncContextManager[Tx]:
        """Begin a read-only transaction over one consistent state of the database."""
        ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers."""
        ...


def for_update(tx: Statements) -> str:
    """Row-lock clause: PostgreSQL needs it between processes; SQLite serialises all writers."""
    return " FOR UPDATE" if tx.dialect == "postgres" else ""


def skip_locked(tx: Tx) -> str:
    return " FOR UPDATE SKIP LOCKED" if tx.dialect == "postgres" else ""


def among(tx: Tx, values: Sequence[Any]) -> tuple[str, list[Any]]:
    """`IN (?, ...)`, or on PostgreSQL `= ANY(?)` with one array: a statement text that does
    not change with the number of values, so it is parsed and prepared once."""
    if tx.dialect == "postgres":
        return "= ANY(?)", [list(values)]
    return f"IN ({', '.join('?' for _ in values)})", list(values)


@dataclass
class CommitLog:
    """What the writing transactions of one piece of work came to (those that ran a write
    statement; a read changes nothing whatever becomes of it): how many reached their COMMIT
    (`sent`) and how many are known to have committed (`committed`). A failure with nothing
    sent changed nothing; one after a COMMIT was sent may follow a change that stands."""

    sent: int = 0
    committed: int = 0


# The log of the work in progress in this task (commands.context.run_command sets one).
commit_log: ContextVar[CommitLog | None] = ContextVar("commit_log", default=None)


@contextmanager
def uncounted() -> Iterator[None]:
    """Writes made in here are left out of the work's CommitLog: bookkeeping nobody would
    call a change (an incident number taken), which must not turn a failure's "nothing was
    changed" into "I cannot tell"."""
    token = commit_log.set(None)
    try:
        yield
    finally:
        commit_log.reset(token)


class CommitHooks:
    """The before/after-commit hooks of one transaction; adapters mix it into their Tx."""

    def __init__(self) -> None:
        self._before: list[Callable[[], Awaitable[None]]] = []
        self._last: list[Callable[[], Awaitable[None]]] = []
        self._after: list[Callable[[], None]] = []
        self.wrote = False  # set by the adapter's execute(): this transaction may change data

    def before_commit(self, hook: Callable[[], Awaitable[None]], *, last: bool = False) -> None:
        (self._last if last else self._before).append(hook)

    def after_commit(self, hook: Callable[[], None]) -> None:
        self._after.append(hook)

    async def run_before_commit(self) -> None:
        # A hook may register another (the audit chainer after a journal line): run until
        # none is left. `last` hooks (the audit chainer, which takes a lock held to the
        # commit) run once no other hook is waiting.
        while self._before or self._last:
            hook = (self._before or self._last).pop(0)
            await hook()
        log = commit_log.get()
        if log is not None and self.wrote:  # the adapter sends COMMIT next
            log.sent += 1

    def run_after_commit(self) -> None:
        log = commit_log.get()
        if log is not None and self.wrote:
            log.committed += 1
        hooks, self._after = self._after, []
        for hook in hooks:
            try:
                hook()
            except Exception:  # the commit stands; a failed kick is caught up by polling
                logger.exception("after-commit hook failed")
