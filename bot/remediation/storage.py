"""SQL for remediation requests. Runs inside a caller's Tx; `lock=True` takes the row lock
that every state change holds (SQLite serialises writers anyway)."""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.clock import utc_from_timestamp
from bot.remediation.plans import Preview
from bot.store import Row, Tx, for_update

# The outcome of an expired request whose message its channel never showed (then the reason).
NOT_POSTED = "not posted: "


class Status(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"
    DENIED = "denied"
    UNKNOWN = "unknown"  # found running after its executor died: never re-run

    @property
    def is_final(self) -> bool:
        return self in FINAL


FINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.EXPIRED, Status.DENIED, Status.UNKNOWN})


@dataclass(frozen=True, slots=True)
class Request:
    id: int
    action: str
    service: str
    params: dict[str, Any]
    risk: str
    preview: Preview
    status: Status
    requested_by: str
    requested_at: datetime
    expires_at: datetime
    approvals_needed: int
    approvals: tuple[str, ...]
    decided_by: str | None
    decided_at: datetime | None
    incident_id: str | None
    channel_id: str | None
    message_ts: str | None
    runner: str | None
    started_at: datetime | None
    finished_at: datetime | None
    outcome: str
    result: dict[str, Any]
    origin: str

    @property
    def subject(self) -> str:
        """How reminders about this request name it."""
        return subject_of(self.id)


def subject_of(request_id: int) -> str:
    return f"remediation:{request_id}"


def _dt(value: float | None) -> datetime | None:
    return utc_from_timestamp(value) if value is not None else None


def _request(row: Row) -> Request:
    return Request(
        id=int(row["id"]),
        action=row["action"],
        service=row["service"],
        params=json.loads(row["params"]),
        risk=row["risk"],
        preview=Preview.from_json(json.loads(row["preview"])),
        status=Status(row["status"]),
        requested_by=row["requested_by"],
        requested_at=utc_from_timestamp(row["requested_at"]),
        expires_at=utc_from_timestamp(row["expires_at"]),
        approvals_needed=int(row["approvals_needed"]),
        approvals=tuple(json.loads(row["approvals"])),
        decided_by=row["decided_by"],
        decided_at=_dt(row["decided_at"]),
        incident_id=row["incident_id"],
        channel_id=row["channel_id"],
        message_ts=row["message_ts"],
        runner=row["runner"],
        started_at=_dt(row["started_at"]),
        finished_at=_dt(row["finished_at"]),
        outcome=row["outcome"],
        result=json.loads(row["result"]),
        origin=row["origin"],
    )


async def insert(
    tx: Tx,
    *,
    action: str,
    service: str,
    params: dict[str, Any],
    risk: str,
    preview: Preview,
    requested_by: str,
    now: datetime,
    expires_at: datetime,
    approvals_needed: int,
    incident_id: str | None,
    channel_id: str | None,
    origin: str,
    request_key: str | None,
) -> Request:
    row = await tx.fetchone(
        "INSERT INTO remediation_requests (action, service, params, risk, preview, status,"
        " requested_by, requested_at, expires_at, approvals_needed, incident_id, channel_id,"
        " origin, request_key, updated_at) VALUES (?, ?, ?, ?, ?, 'requested', ?, ?, ?, ?, ?,"
        " ?, ?, ?, ?) RETURNING *",
        (
            action,
            service,
            json.dumps(params, sort_keys=True),
            risk,
            json.dumps(preview.to_json()),
            requested_by,
            now.timestamp(),
            expires_at.timestamp(),
            approvals_needed,
            incident_id,
            channel_id,
            origin,
            request_key,
            now.timestamp(),
        ),
    )
    assert row is not None
    return _request(row)


async def get(tx: Tx, request_id: int, *, lock: bool = False) -> Request | None:
    row = await tx.fetchone(
        f"SELECT * FROM remediation_requests WHERE id = ?{for_update(tx) if lock else ''}",
        (request_id,),
    )
    return _request(row) if row else None


async def by_key(tx: Tx, request_key: str) -> Request | None:
    row = await tx.fetchone(
        "SELECT * FROM remediation_requests WHERE request_key = ?", (request_key,)
    )
    return _request(row) if row else None


async def update(tx: Tx, request_id: int, now: datetime, **fields: Any) -> Request:
    """Set `fields` (datetimes, lists and dicts converted) and return the row as it is now."""
    values: list[Any] = []
    for value in fields.values():
        if isinstance(value, datetime):
            value = value.timestamp()
        elif isinstance(value, list | tuple | dict):
            value = json.dumps(value)
        elif isinstance(value, StrEnum):
            value = value.value
        values.append(value)
    sets = ", ".join(f"{name} = ?" for name in fields)
    row = await tx.fetchone(
        f"UPDATE remediation_requests SET {sets}, updated_at = ? WHERE id = ? RETURNING *",
        (*values, now.timestamp(), request_id),
    )
    assert row is not None
    return _request(row)


async def set_message(tx: Tx, request_id: int, channel_id: str, ts: str) -> bool:
    changed = await tx.execute(
        "UPDATE remediation_requests SET channel_id = ?, message_ts = ?"
        " WHERE id = ? AND message_ts IS NULL",
        (channel_id, ts, request_id),
    )
    return changed == 1


async def never_posted(tx: Tx, request_id: int) -> bool:
    """The request's message failed for good: no channel message to refresh or reply under,
    so its later refreshes and outcome skip it rather than wait for it."""
    changed = await tx.execute(
        "UPDATE remediation_requests SET channel_id = NULL WHERE id = ? AND message_ts IS NULL",
        (request_id,),
    )
    return changed == 1


# The first key of the advisory locks that serialise requests for one change (PostgreSQL):
# "REM" as an int, apart from the migrations' lock (bot.store.migrate).
_CHANGE_LOCK_CLASS = 0x52454D


async def lock_change(
    tx: Tx, *, action: str, service: str, forms: Sequence[dict[str, Any]]
) -> None:
    """Hold, until `tx` ends, the lock of requests for this very change: two transactions
    asking for it at once take turns, so the second finds the first's request (same_waiting)
    instead of making another. `forms`: every form the change's parameters are stored in
    (actions.stored_forms), each locked, in that order; a replica of an older version locks
    the one it stores. SQLite serialises its writers already."""
    if tx.dialect != "postgres":
        return
    for params in forms:
        change = "\x00".join((action, service, json.dumps(params, sort_keys=True)))
        key = zlib.crc32(change.encode()) - (1 << 31)  # a signed 32-bit int, as PostgreSQL wants
        await tx.execute(
            "SELECT pg_advisory_xact_lock(CAST(? AS integer), CAST(? AS integer))",
            (_CHANGE_LOCK_CLASS, key),
        )


async def same_waiting(
    tx: Tx, *, action: str, service: str, forms: Sequence[dict[str, Any]], now: datetime
) -> Request | None:
    """The request for this very change still waiting for approval, if there is one, stored
    in any of its `forms` (lock_change)."""
    stored = [json.dumps(params, sort_keys=True) for params in forms]
    row = await tx.fetchone(
        "SELECT * FROM remediation_requests WHERE status = 'requested' AND expires_at > ?"
        f" AND action = ? AND service = ? AND params IN ({', '.join('?' for _ in stored)})"
        " ORDER BY id LIMIT 1",
        (now.timestamp(), action, service, *stored),
    )
    return _request(row) if row else None


async def waiting_for(tx: Tx, limit: int = 20) -> list[Request]:
    """Requests still waiting for approval, oldest first (the App Home's "approvals waiting")."""
    rows = await tx.fetchall(
        "SELECT * FROM remediation_requests WHERE status = 'requested'"
        f" ORDER BY requested_at LIMIT {int(limit)}"
    )
    return [_request(row) for row in rows]


async def posted_and_waiting(tx: Tx) -> list[Request]:
    """Requests still waiting for approval whose message was posted, oldest first."""
    rows = await tx.fetchall(
        "SELECT * FROM remediation_requests WHERE status = 'requested'"
        " AND message_ts IS NOT NULL ORDER BY requested_at, id"
    )
    return [_request(row) for row in rows]


async def for_incident(tx: Tx, incident_id: str) -> list[Request]:
    """Every request made in an incident, oldest first (the post-incident report)."""
    rows = await tx.fetchall(
        "SELECT * FROM remediation_requests WHERE incident_id = ? ORDER BY requested_at, id",
        (incident_id,),
    )
    return [_request(row) for row in rows]


async def suggested_for(tx: Tx, incident_id: str, service: str, action: str) -> bool:
    """Whether a diagnosis of `service` recorded on `incident_id` suggested `action`: the
    tie a suggestion button's incident must have (its value is the clicker's to forge)."""
    rows = await tx.fetchall(
        "SELECT data FROM timeline WHERE incident_id = ? AND kind = 'diagnosed'", (incident_id,)
    )
    for row in rows:
        data = json.loads(row["data"])
        if (
            isinstance(data, dict)
            and str(data.get("service", "")).lower() == service.lower()
            and action in (data.get("suggestions") or [])
        ):
            return True
    return False
