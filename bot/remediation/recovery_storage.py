"""SQL of automatic recovery: the per-service check claims, the memory, the restarts made.

A check is claimed with one conditional UPDATE (due, and nobody's claim alive): on SQLite and
on PostgreSQL exactly one of several processes changes the row, so exactly one checks it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.clock import utc_from_timestamp
from bot.remediation.recovery_plan import Memory
from bot.store import Tx


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _dt(value: Any) -> datetime | None:
    return utc_from_timestamp(float(value)) if value is not None else None


async def ensure(tx: Tx, service: str, first_check_at: datetime) -> None:
    """A row for `service` (its first check due at `first_check_at`), unless one exists."""
    await tx.execute(
        "INSERT INTO auto_recovery_checks (service, next_check_at) VALUES (?, ?)"
        " ON CONFLICT (service) DO NOTHING",
        (service, first_check_at.timestamp()),
    )


async def claim(
    tx: Tx, service: str, owner: str, now: datetime, claim_seconds: float
) -> dict[str, Memory] | None:
    """Claim the check of `service` when it is due; its memory, or None (not due, or held)."""
    ts = now.timestamp()
    row = await tx.fetchone(
        "UPDATE auto_recovery_checks SET claimed_by = ?, claimed_until = ?"
        " WHERE service = ? AND next_check_at <= ?"
        " AND (claimed_until IS NULL OR claimed_until < ?) RETURNING memory",
        (owner, ts + claim_seconds, service, ts, ts),
    )
    if row is None:
        return None
    return {name: _memory(item) for name, item in json.loads(row["memory"] or "{}").items()}


def _memory(item: dict[str, Any]) -> Memory:
    unhealthy, waiting = _dt(item.get("unhealthy_since")), _dt(item.get("waiting_since"))
    if "failing_since" not in item:
        # Stored by the version before (no failing_since key): its unhealthy_since was the
        # first failing sighting, and a wait for a node counted from waiting_since alone.
        # Read as such, or an upgrade mid-wait starts the window again (the page comes late).
        return Memory(
            unhealthy_since=unhealthy or waiting,
            gave_up_at=_dt(item.get("gave_up_at")),
            waiting_since=waiting,
            failing_since=unhealthy,
        )
    return Memory(
        unhealthy_since=unhealthy,
        gave_up_at=_dt(item.get("gave_up_at")),
        waiting_since=waiting,
        failing_since=_dt(item.get("failing_since")),
        paused_since=_dt(item.get("paused_since")),
    )


def _stored(memory: dict[str, Memory]) -> str:
    return json.dumps(
        {
            name: {
                "unhealthy_since": _ts(m.unhealthy_since),
                "gave_up_at": _ts(m.gave_up_at),
                "waiting_since": _ts(m.waiting_since),
                "failing_since": _ts(m.failing_since),
                "paused_since": _ts(m.paused_since),
            }
            for name, m in memory.items()
            if m != Memory()
        }
    )


async def save_memory(
    tx: Tx, service: str, owner: str, now: datetime, memory: dict[str, Memory]
) -> bool:
    """Store what was decided, keeping the claim; False when the claim was lost."""
    changed = await tx.execute(
        "UPDATE auto_recovery_checks SET memory = ?, checked_at = ?"
        " WHERE service = ? AND claimed_by = ?",
        (_stored(memory), now.timestamp(), service, owner),
    )
    return changed == 1


async def finish(
    tx: Tx,
    service: str,
    owner: str,
    now: datetime,
    next_check_at: datetime,
    memory: dict[str, Memory],
    result: str,
) -> bool:
    """Store the memory, plan the next check and drop the claim; False when it was lost."""
    changed = await tx.execute(
        "UPDATE auto_recovery_checks SET claimed_by = NULL, claimed_until = NULL,"
        " next_check_at = ?, memory = ?, checked_at = ?, last_result = ?"
        " WHERE service = ? AND claimed_by = ?",
        (next_check_at.timestamp(), _stored(memory), now.timestamp(), result, service, owner),
    )
    return changed == 1


async def release(tx: Tx, service: str, owner: str) -> None:
    """Give a claim back without checking (the check failed before it decided anything)."""
    await tx.execute(
        "UPDATE auto_recovery_checks SET claimed_by = NULL, claimed_until = NULL"
        " WHERE service = ? AND claimed_by = ?",
        (service, owner),
    )


async def restarts_since(tx: Tx, service: str, deployment: str, since: datetime) -> int:
    row = await tx.fetchone(
        "SELECT COUNT(*) AS n FROM auto_recovery_restarts"
        " WHERE service = ? AND deployment = ? AND at > ?",
        (service, deployment, since.timestamp()),
    )
    return int(row["n"]) if row else 0


async def add_restart(
    tx: Tx,
    service: str,
    deployment: str,
    now: datetime,
    reason: str,
    incident_id: str | None,
    pods: tuple[str, ...] = (),
) -> int:
    """Record a restart before it is made: a crash after this under-counts, never over-runs.
    With `pods`, only those pods are replaced (kubernetes.delete_pod), not the deployment."""
    row = await tx.fetchone(
        "INSERT INTO auto_recovery_restarts"
        " (service, deployment, at, reason, incident_id, action, pods)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            service,
            deployment,
            now.timestamp(),
            reason,
            incident_id,
            "kubernetes.delete_pod" if pods else "kubernetes.restart",
            ",".join(pods),
        ),
    )
    assert row is not None
    return int(row["id"])


async def finish_restart(tx: Tx, restart_id: int, status: str, outcome: str, now: datetime) -> None:
    """`status`: succeeded, failed, or unknown (sent without an answer: may have been made)."""
    await tx.execute(
        "UPDATE auto_recovery_restarts SET status = ?, outcome = ?, finished_at = ? WHERE id = ?",
        (status, outcome, now.timestamp(), restart_id),
    )


async def restarts(tx: Tx, service: str) -> list[dict[str, Any]]:
    """Every restart made for `service`, oldest first (tests, the CLI)."""
    rows = await tx.fetchall(
        "SELECT * FROM auto_recovery_restarts WHERE service = ? ORDER BY id", (service,)
    )
    return [dict(row) for row in rows]


async def for_incident(tx: Tx, incident_id: str) -> list[dict[str, Any]]:
    """The restarts made while `incident_id` was the service's open incident, oldest first."""
    rows = await tx.fetchall(
        "SELECT * FROM auto_recovery_restarts WHERE incident_id = ? ORDER BY id", (incident_id,)
    )
    return [dict(row) for row in rows]
