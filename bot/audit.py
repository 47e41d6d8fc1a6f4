"""Append-only audit log with a hash chain: every entry commits to the one before it.

`append` runs inside the caller's transaction, so a state change and its entry land together.
The chain head (last seq and hash) is one locked row: it serialises appenders across processes
and lets `verify` notice a deleted tail, not only an edited or deleted middle.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from bot.clock import Clock, utc_from_timestamp
from bot.redact import redact
from bot.store import Store, Tx, for_update


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


async def append(tx: Tx, at: datetime, record: AuditRecord) -> int:
    """Append one entry inside `tx`; return its sequence number. Arguments are redacted."""
    head = await tx.fetchone("SELECT seq, hash FROM audit_head WHERE id = 1" + for_update(tx))
    assert head is not None, "audit_head row missing: run migrations"
    seq = int(head["seq"]) + 1
    timestamp = at.timestamp()
    args_json = _args_json(record.args)
    digest = _digest(head["hash"], seq, timestamp, record, args_json)
    await tx.execute(
        "INSERT INTO audit_log (seq, at, actor, action, target, args, outcome, incident_id,"
        " request_id, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            seq,
            timestamp,
            record.actor,
            record.action,
            record.target,
            args_json,
            record.outcome,
            record.incident_id,
            record.request_id,
            head["hash"],
            digest,
        ),
    )
    await tx.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (seq, digest))
    return seq


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

    async def record(self, record: AuditRecord) -> int:
        """Record an entry in a transaction of its own (refused or malformed commands)."""
        async with self.store.transaction() as tx:
            return await append(tx, self.clock.now(), record)

    async def entries(self, *, incident_id: str | None = None) -> AsyncIterator[AuditEntry]:
        """Every entry in order, read page by page so a large log streams."""
        async for row in self._rows(incident_id):
            yield _entry(row)

    async def _rows(self, incident_id: str | None = None) -> AsyncIterator[dict[str, Any]]:
        after = 0
        while True:
            where = "seq > ?" + (" AND incident_id = ?" if incident_id else "")
            params: tuple[Any, ...] = (after, incident_id) if incident_id else (after,)
            async with self.store.transaction() as tx:
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
        """Recompute the chain; report the first entry that was edited, deleted or inserted."""
        expected_seq, prev_hash, checked = 1, "", 0
        async for row in self._rows():
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
        async with self.store.transaction() as tx:
            head = await tx.fetchone("SELECT seq, hash FROM audit_head WHERE id = 1")
        if head is None or int(head["seq"]) != checked or head["hash"] != prev_hash:
            return VerifyResult(False, checked, checked + 1, "entries missing at the end")
        return VerifyResult(True, checked)
