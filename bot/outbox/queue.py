"""The outbox's queue: an effect, queueing one in the caller's transaction, and what other
packages ask of the queue (bot.outbox's docstring holds the invariants)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.errors import NotifierError
from bot.store import Store, Tx, for_update
from bot.store.buffers import TxBuffer

# An effect's place in its lane's order, and the effects whose turn it is and are due
# now: the first undone one of each lane (waiting, retrying or in flight), and any
# without a lane. One scan of the undone rows, a plan no statistics can turn quadratic.
PLACE = "COALESCE(order_seq, id)"
UNDONE = "delivered_at IS NULL AND failed_at IS NULL"
DUE_TURNS = (
    "FROM (SELECT id, lane, available_at, claimed_until, "
    f"{PLACE} AS place, ROW_NUMBER() OVER (PARTITION BY lane ORDER BY {PLACE}, id)"
    f" AS turn FROM outbox WHERE {UNDONE}) undone"
    " WHERE (turn = 1 OR lane IS NULL) AND available_at <= ?"
)


@dataclass(frozen=True, slots=True)
class Effect:
    id: int
    kind: str
    lane: str | None  # what it keeps its order in (see the module docstring)
    payload: dict[str, Any]
    attempts: int
    created_at: datetime
    position: int  # its place in its lane's order (its id, or its parent's place)
    # This process's claim: `claimed_until` as it set it, so a renewal can tell whether the
    # claim is still its own (another process takes an expired one over).
    claimed_until: float | None = None

    @property
    def incident(self) -> str | None:
        """The incident whose lane this effect is in (None for an effect without a lane)."""
        return None if self.lane is None else self.lane.partition("/")[0]


EffectHandler = Callable[[Effect], Awaitable[None]]
FailureHandler = Callable[[Effect, NotifierError], Awaitable[None]]

# The effect whose handler is running in this task: what a follow-up is queued behind.
current_effect: ContextVar[Effect | None] = ContextVar("outbox_delivering", default=None)

# The lanes that got a follow-up while this task delivered (the dispatcher sets a set around
# each delivery): the rest of that lane's claimed run must wait, it now comes after it.
follow_ups: ContextVar[set[str] | None] = ContextVar("outbox_follow_ups", default=None)


# Writes that record what this task's delivery did (a post's ts), stored with its done mark
# (the dispatcher sets a list around each delivery; bot.outbox.completions).
marked_with: ContextVar[list[tuple[str, tuple[Any, ...]]] | None] = ContextVar(
    "outbox_marked_with", default=None
)


async def write_with_mark(store: Store, sql: str, params: Sequence[Any]) -> None:
    """Store what a delivery did (the message it posted) with the effect's done mark: in the
    mark's transaction, no round trip of its own, and before any later effect of its lane
    runs. Outside a delivery (no mark to wait for), written at once."""
    waiting = marked_with.get()
    if waiting is not None:
        waiting.append((sql, tuple(params)))
        return
    async with store.autocommit() as db:
        await db.execute(sql, params)


def note_follow_up(lane: str) -> None:
    """Tell the dispatcher that a follow-up was queued in `lane` (by whatever queues one)."""
    noted = follow_ups.get()
    if noted is not None:
        noted.add(lane)


async def enqueue(
    tx: Tx,
    at: datetime,
    kind: str,
    payload: dict[str, Any],
    *,
    lane: str | None = None,
    delay: float = 0.0,
) -> None:
    """Queue an effect inside the caller's transaction; delivered once it commits.

    Effects of one lane are delivered in the order queued (a `delay` holds back the lane's
    later effects too); one queued by the handler of another effect of the same lane goes
    right after that effect. Effects without a lane keep no order.

    Not waited for: PostgreSQL sends the row with the transaction's next statement (ids, and
    so the order, are handed out in the order sent). In a transaction that `buffer`s its
    effects the row is written just before the commit.
    """
    parent = current_effect.get()
    place = None
    if parent is not None and lane is not None and parent.lane == lane:
        place = parent.position
        note_follow_up(lane)
    row = (kind, lane, json.dumps(payload), at.timestamp(), at.timestamp() + delay, place)
    buffered = _rows.get(tx)
    if buffered is not None:
        buffered.append(row)
        return
    await tx.execute_nowait(_INSERT + _ROW, row)


_INSERT = "INSERT INTO outbox (kind, lane, payload, created_at, available_at, order_seq) VALUES "
_ROW = "(?, ?, ?, ?, ?, ?)"
_ROWS_PER_INSERT = 150  # 900 parameters: inside SQLite's oldest limit of 999


async def _write(tx: Tx, rows: list[tuple[Any, ...]]) -> None:
    if tx.dialect == "postgres" and len(rows) * 6 >= 50:  # 6 parameters a row
        # Arrays, one per column: one statement text whatever the number, prepared once.
        # Ids are handed out in the arrays' order (ORDER BY n), the order queued. A few
        # rows (a declaration's) go as VALUES below: cheaper for psycopg to send than
        # arrays, and under the 50 parameters past which it parses the text every time.
        # Not waited for: sent with the transaction's next statement (its COMMIT, or the
        # audit head's read), no round trip of its own.
        await tx.execute_nowait(
            "INSERT INTO outbox (kind, lane, payload, created_at, available_at, order_seq)"
            " SELECT kind, lane, payload, created_at, available_at, order_seq"
            " FROM unnest(?::text[], ?::text[], ?::text[], ?::float8[], ?::float8[],"
            " ?::bigint[]) WITH ORDINALITY AS queued (kind, lane, payload, created_at,"
            " available_at, order_seq, n) ORDER BY n",
            [list(column) for column in zip(*rows, strict=True)],
        )
        return
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        chunk = rows[start : start + _ROWS_PER_INSERT]
        await tx.execute_nowait(
            _INSERT + ", ".join([_ROW] * len(chunk)), [value for row in chunk for value in row]
        )


# Effects queued in a transaction that buffers them (a batch of reminder firings): written
# in one statement per transaction, in the order queued.
_rows: TxBuffer[list[tuple[Any, ...]]] = TxBuffer(list, _write)


def buffer(tx: Tx) -> None:
    """Make `tx` write the effects queued in it with one multi-row INSERT before it commits
    (instead of one INSERT each). Ids follow the order queued, so lanes keep their order; a
    read of the outbox in `tx` does not see them until then (`waiting` and
    `waiting_payloads` do: they look at them too)."""
    _rows.open(tx)


def _buffered_payloads(tx: Tx, kind: str) -> list[str]:
    """The payloads (JSON) of the effects of `kind` queued in `tx` and not yet written."""
    return [row[2] for row in _rows.get(tx) or () if row[0] == kind]


# -- what other packages ask of the queue, inside their own transactions ----------------------


async def later_undone(tx: Tx, effect: Effect) -> bool:
    """Whether an effect of `effect`'s kind queued after it in its lane is still undone (one
    that will show a newer state, so this one may be skipped)."""
    row = await tx.fetchone(
        f"SELECT id FROM outbox WHERE kind = ? AND lane = ? AND id > ? AND {UNDONE} LIMIT 1",
        (effect.kind, effect.lane, effect.id),
    )
    return row is not None


async def waiting(tx: Tx, kind: str, payload: dict[str, Any]) -> bool:
    """Whether an effect of `kind` with this very payload is queued and no dispatcher has
    taken it yet. Its row stays locked until the caller's transaction ends, so none takes it
    meanwhile: a debounce can rely on it to be delivered after the caller's change."""
    if json.dumps(payload) in _buffered_payloads(tx, kind):
        return True  # queued in this very transaction, to be written at its commit
    row = await tx.fetchone(
        f"SELECT id FROM outbox WHERE kind = ? AND payload = ? AND {UNDONE}"
        " AND claimed_until IS NULL" + for_update(tx),
        (kind, json.dumps(payload)),
    )
    return row is not None


async def waiting_payloads(tx: Tx, kind: str) -> list[dict[str, Any]]:
    """`waiting` for every effect of `kind` at once, in one statement: the payloads of those
    queued and not yet taken, their rows locked until the caller's transaction ends."""
    rows = await tx.fetchall(
        f"SELECT payload FROM outbox WHERE kind = ? AND {UNDONE} AND claimed_until IS NULL"
        " ORDER BY id" + for_update(tx),  # the rows locked in one order by every caller
        (kind,),
    )
    written = [json.loads(row["payload"]) for row in rows]
    return written + [json.loads(payload) for payload in _buffered_payloads(tx, kind)]


async def undone_count(tx: Tx) -> int:
    """How many effects are still to deliver (waiting, retrying or being delivered)."""
    row = await tx.fetchone(f"SELECT COUNT(*) AS n FROM outbox WHERE {UNDONE}")
    return int(row["n"]) if row else 0


async def undone_stats(tx: Tx, now: float) -> tuple[int, float]:
    """How many effects are undone, and how old the oldest is (seconds; 0 when none)."""
    row = await tx.fetchone(
        f"SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox WHERE {UNDONE}"
    )
    if row is None or not row["n"]:
        return 0, 0.0
    return int(row["n"]), max(0.0, now - float(row["oldest"]))
