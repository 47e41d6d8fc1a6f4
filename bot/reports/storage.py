"""SQL for postmortems, action items and incident targets (caller's Tx)."""

from __future__ import annotations

from datetime import datetime

from bot.clock import utc_from_timestamp
from bot.reports.models import ActionItem, NewActionItem, Postmortem
from bot.store import Row, Statements, Tx, for_update


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _dt(value: float | None) -> datetime | None:
    return utc_from_timestamp(value) if value is not None else None


# -- postmortems ----------------------------------------------------------------------------


async def last_reopened(tx: Statements, incident_id: str) -> datetime | None:
    """When the incident was last reopened (None: never): what tells whether its
    postmortem's resolution predates a reopening (models.latest_resolution)."""
    row = await tx.fetchone(
        "SELECT MAX(at) AS at FROM timeline WHERE incident_id = ? AND kind = 'reopened'",
        (incident_id,),
    )
    return _dt(row["at"]) if row is not None and row["at"] is not None else None


async def get_postmortem(tx: Statements, incident_id: str) -> Postmortem:
    row = await tx.fetchone("SELECT * FROM postmortems WHERE incident_id = ?", (incident_id,))
    if row is None:
        return Postmortem(incident_id=incident_id)
    return Postmortem(
        incident_id=row["incident_id"],
        root_cause=row["root_cause"],
        resolution=row["resolution"],
        prevention=row["prevention"],
        lessons=row["lessons"],
        affected_users=row["affected_users"],
        data_impact=row["data_impact"],
        started_at=_dt(row["started_at"]),
        detected_at=_dt(row["detected_at"]),
        updated_by=row["updated_by"],
        updated_at=_dt(row["updated_at"]),
    )


async def save_postmortem(tx: Tx, postmortem: Postmortem) -> None:
    values = (
        postmortem.root_cause,
        postmortem.resolution,
        postmortem.prevention,
        postmortem.lessons,
        postmortem.affected_users,
        postmortem.data_impact,
        _ts(postmortem.started_at),
        _ts(postmortem.detected_at),
        postmortem.updated_by,
        _ts(postmortem.updated_at),
    )
    await tx.execute(
        "INSERT INTO postmortems (incident_id, root_cause, resolution, prevention, lessons,"
        " affected_users, data_impact, started_at, detected_at, updated_by, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (incident_id) DO UPDATE SET"
        " root_cause = excluded.root_cause, resolution = excluded.resolution,"
        " prevention = excluded.prevention, lessons = excluded.lessons,"
        " affected_users = excluded.affected_users, data_impact = excluded.data_impact,"
        " started_at = excluded.started_at, detected_at = excluded.detected_at,"
        " updated_by = excluded.updated_by, updated_at = excluded.updated_at",
        (postmortem.incident_id, *values),
    )


# -- action items ---------------------------------------------------------------------------


def _item(row: Row) -> ActionItem:
    return ActionItem(
        id=int(row["id"]),
        incident_id=row["incident_id"],
        text=row["text"],
        owner=row["owner"],
        due_at=utc_from_timestamp(row["due_at"]),
        created_by=row["created_by"],
        created_at=utc_from_timestamp(row["created_at"]),
        closed_at=_dt(row["closed_at"]),
        closed_by=row["closed_by"],
    )


async def add_item(
    tx: Tx, incident_id: str, item: NewActionItem, actor: str, now: datetime
) -> ActionItem:
    row = await tx.fetchone(
        "INSERT INTO action_items (incident_id, text, owner, due_at, created_by, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?) RETURNING *",
        (incident_id, item.text, item.owner, item.due_at.timestamp(), actor, now.timestamp()),
    )
    assert row is not None
    return _item(row)


async def get_item(tx: Tx, item_id: int, *, lock: bool = False) -> ActionItem | None:
    row = await tx.fetchone(
        "SELECT * FROM action_items WHERE id = ?" + (for_update(tx) if lock else ""), (item_id,)
    )
    return _item(row) if row else None


async def close_item(tx: Tx, item_id: int, actor: str, now: datetime) -> bool:
    """Close an open item; False when it was already closed (a second click)."""
    changed = await tx.execute(
        "UPDATE action_items SET closed_at = ?, closed_by = ? WHERE id = ? AND closed_at IS NULL",
        (now.timestamp(), actor, item_id),
    )
    return changed == 1


async def items_for_incident(tx: Tx, incident_id: str) -> list[ActionItem]:
    rows = await tx.fetchall(
        "SELECT * FROM action_items WHERE incident_id = ? ORDER BY id", (incident_id,)
    )
    return [_item(row) for row in rows]


# An action item of a real incident: a drill's are practice, kept off the App Home (README).
_NOT_A_DRILLS = " AND incident_id NOT IN (SELECT id FROM incidents WHERE drill)"


async def open_items_for_owner(tx: Tx, owner: str, limit: int) -> tuple[list[ActionItem], int]:
    """The owner's open items of real incidents (drills' left out), soonest due first (at
    most `limit`), and how many in all."""
    rows = await tx.fetchall(
        "SELECT * FROM action_items WHERE owner = ? AND closed_at IS NULL"
        f"{_NOT_A_DRILLS} ORDER BY due_at, id LIMIT {int(limit)}",
        (owner,),
    )
    total = await tx.fetchone(
        "SELECT COUNT(*) AS n FROM action_items WHERE owner = ? AND closed_at IS NULL"
        + _NOT_A_DRILLS,
        (owner,),
    )
    return [_item(row) for row in rows], int(total["n"]) if total else 0


# -- targets --------------------------------------------------------------------------------


async def save_targets(
    tx: Tx, incident_id: str, ack_due_at: datetime, resolve_due_at: datetime
) -> None:
    # Not waited for: PostgreSQL sends it with the transaction's next statement.
    await tx.execute_nowait(
        "INSERT INTO incident_targets (incident_id, ack_due_at, resolve_due_at) VALUES (?, ?, ?)"
        " ON CONFLICT (incident_id) DO UPDATE SET ack_due_at = excluded.ack_due_at,"
        " resolve_due_at = excluded.resolve_due_at",
        (incident_id, ack_due_at.timestamp(), resolve_due_at.timestamp()),
    )


async def get_targets(tx: Tx, incident_id: str) -> tuple[datetime | None, datetime | None]:
    row = await tx.fetchone(
        "SELECT ack_due_at, resolve_due_at FROM incident_targets WHERE incident_id = ?",
        (incident_id,),
    )
    if row is None:
        return None, None
    return _dt(row["ack_due_at"]), _dt(row["resolve_due_at"])
