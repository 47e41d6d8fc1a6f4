"""Append-only audit log with a hash chain: every entry commits to the one before it.

`append` runs inside the caller's transaction, so a state change and its entry land together.
The chain head (last seq and hash) is one locked row: it orders appenders across processes and
lets `verify` notice a deleted tail, not only an edited or deleted middle.

The head is locked only in the instant before the commit. `append` buffers its record on the
transaction and registers a before-commit hook (run after every other hook); the hook takes
the head lock, chains every buffered entry, writes them and the new head (on PostgreSQL one
statement, sent with the COMMIT that releases the lock: Tx.execute_with_commit). Before
issue 7 the lock was taken at the first `append` and held through the rest of the
transaction (outbox rows, reminders, every round trip of a busy event loop): all writers of
all replicas queued on it, and a burst of 2,000 declarations saw 1,779 refused
(bench/declare_burst.py --baseline).

`verify` reads one consistent snapshot (Store.snapshot), so it runs while the bot writes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from bot.clock import Clock, utc_from_timestamp
from bot.redact import redact
from bot.store import Store, Tx, for_update
from bot.store.buffers import TxBuffer


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    args: dict[str, Any]
    outcome: str
    incident_id: str | None
    request_id: str | None
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return data


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """What the caller knows; seq, time and hashes are filled in by `append`."""

    actor: str
    action: str
    target: str
    outcome: str
    args: dict[str, Any] = field(default_factory=dict)
    incident_id: str | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    checked: int
    first_broken_seq: int | None = None
    reason: str = ""


def _digest(prev_hash: str, seq: int, at: float, record: AuditRecord, args_json: str) -> str:
    canonical = json.dumps(
        [
            seq,
            repr(at),
            record.actor,
            record.action,
            record.target,
            args_json,
            record.outcome,
            record.incident_id,
            record.request_id,
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def _args_json(args: dict[str, Any]) -> str:
    return json.dumps(redact(args), sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True, slots=True)
class _Pending:
    at: float
    record: AuditRecord
    args_json: str


_INSERT = (
    "INSERT INTO audit_log (seq, at, actor, action, target, args, outcome, incident_id,"
    " request_id, prev_hash, hash) VALUES "
)
_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_ROWS_PER_INSERT = 50  # 550 parameters: inside SQLite's oldest limit of 999


async def append(tx: Tx, at: datetime, record: AuditRecord) -> None:
    """Append one entry inside `tx`. Its arguments are redacted now; it is chained and
    written just before `tx` commits, in the order appended."""
    _pending.open(tx).append(_Pending(at.timestamp(), record, _args_json(record.args)))


async def _chain(tx: Tx, buffered: list[_Pending]) -> None:
    """Lock the head, chain and write the buffered entries, move the head: until commit."""
    if not buffered:
        return
    head = await tx.fetchone("SELECT seq, hash FROM audit_head WHERE id = 1" + for_update(tx))
    assert head is not None, "audit_head row missing: run migrations"
    seq, prev_hash = int(head["seq"]), str(head["hash"])
    rows: list[tuple[Any, ...]] = []
    for entry in buffered:
        seq += 1
        digest = _digest(prev_hash, seq, entry.at, entry.record, entry.args_json)
        record = entry.record
        rows.append(
            (
                seq,
                entry.at,
                record.actor,
                record.action,
                record.target,
                entry.args_json,
                record.outcome,
                record.incident_id,
                record.request_id,
                prev_hash,
                digest,
            )
        )
        prev_hash = digest
    chunks = [rows[i : i + _ROWS_PER_INSERT] for i in range(0, len(rows), _ROWS_PER_INSERT)]
    for chunk in chunks[:-1]:
        await _insert(tx, chunk)
    last = chunks[-1]
    if tx.dialect == "postgres":
        # The last rows and the new head in one statement, sent with the COMMIT: the lock
        # is held for two round trips (this and the SELECT ... FOR UPDATE), not three.
        await tx.execute_with_commit(
            f"WITH written AS ({_INSERT}{', '.join([_ROW] * len(last))})"
            " UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1",
            [value for row in last for value in row] + [seq, prev_hash],
        )
    else:
        await _insert(tx, last)
        await tx.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (seq, prev_hash))


# Records appended in a transaction and not yet chained: chained last, since the head's lock
# is held until the commit.
_pending: TxBuffer[list[_Pending]] = TxBuffer(list, _chain, last=True)


async def _insert(tx: Tx, rows: list[tuple[Any, ...]]) -> None:
    await tx.execute(
        _INSERT + ", ".join([_ROW] * len(rows)), [value for row in rows for value in row]
    )


def _entry(row: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        seq=int(row["seq"]),
        at=utc_from_timestamp(row["at"]),
        actor=row["actor"],
        action=row["action"],
        target=row["target"],
        args=json.loads(row["args"]),
        outcome=row["outcome"],
        incident_id=row["incident_id"],
        request_id=row["request_id"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


class AuditLog:
    """Reading, verifying and exporting the audit log; recording standalone entries."""

    def __init__(self, store: Store, clock: Clock, *, page_size: int = 1000) -> None:
        self.store = store
        self.clock = clock
        self.page_size = page_size

    async def record(self, record: AuditRecord) -> None:
        """Record an entry in a transaction of its own (refused or malformed commands)."""
        async with self.store.transaction() as tx:
            await append(tx, self.clock.now(), record)

    async def entries(self, *, incident_id: str | None = None) -> AsyncGenerator[AuditEntry]:
        """Every entry in order, from one snapshot, read page by page so a large log streams."""
        async with self.store.snapshot() as tx:
            async for row in self._rows(tx, incident_id):
                yield _entry(row)

    async def _rows(self, tx: Tx, incident_id: str | None = None) -> AsyncIterator[dict[str, Any]]:
        after = 0
        while True:
            where = "seq > ?" + (" AND incident_id = ?" if incident_id else "")
            params: tuple[Any, ...] = (after, incident_id) if incident_id else (after,)
            rows = await tx.fetchall(
                f"SELECT * FROM audit_log WHERE {where} ORDER BY seq LIMIT {self.page_size}",
                params,
            )
            for row in rows:
                yield row
            if len(rows) < self.page_size:
                return
            after = int(rows[-1]["seq"])

    async def verify(self) -> VerifyResult:
        """Recompute the chain over one consistent snapshot (writers may go on meanwhile);
        report the first entry that was edited, deleted or inserted."""
        async with self.store.snapshot() as tx:
            return await self._verify(tx)

    async def _verify(self, tx: Tx) -> VerifyResult:
        expected_seq, prev_hash, checked = 1, "", 0
        async for row in self._rows(tx):
            entry = _entry(row)
            if entry.seq != expected_seq:
                return VerifyResult(False, checked, expected_seq, "entry missing (deleted?)")
            if entry.prev_hash != prev_hash:
                return VerifyResult(False, checked, entry.seq, "link to previous entry broken")
            record = AuditRecord(
                actor=entry.actor,
                action=entry.action,
                target=entry.target,
                outcome=entry.outcome,
                incident_id=entry.incident_id,
                request_id=entry.request_id,
            )
            if _digest(prev_hash, entry.seq, row["at"], record, row["args"]) != entry.hash:
                return VerifyResult(False, checked, entry.seq, "entry content altered")
            prev_hash, expected_seq, checked = entry.hash, entry.seq + 1, checked + 1
        head = await tx.fetchone("SELECT seq, hash FROM audit_head WHERE id = 1")
        if head is None or int(head["seq"]) != checked or head["hash"] != prev_hash:
            return VerifyResult(False, checked, checked + 1, "entries missing at the end")
        return VerifyResult(True, checked)
