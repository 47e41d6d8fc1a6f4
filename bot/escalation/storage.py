"""SQL for escalation's own data: its state per incident, a page's level, page recipients.

The reminders themselves are the engine's (bot.reminders.storage). Runs inside a caller's Tx.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.clock import utc_from_timestamp
from bot.escalation.planner import EscalationState, ReminderKind
from bot.models import Severity
from bot.store import Row, Statements, Tx, among

# -- escalation state ---------------------------------------------------------------------


async def get_state(tx: Statements, incident_id: str) -> EscalationState | None:
    row = await tx.fetchone("SELECT * FROM escalations WHERE incident_id = ?", (incident_id,))
    return _state(row) if row is not None else None


async def get_states(tx: Tx, incident_ids: Sequence[str]) -> dict[str, EscalationState]:
    """The states of several incidents, in one statement (those that have one)."""
    if not incident_ids:
        return {}
    within, params = among(tx, incident_ids)
    rows = await tx.fetchall(f"SELECT * FROM escalations WHERE incident_id {within}", params)
    return {row["incident_id"]: _state(row) for row in rows}


def _state(row: Row) -> EscalationState:
    breached = row["ack_breached_at"], row["resolve_breached_at"]
    return EscalationState(
        incident_id=row["incident_id"],
        plan=int(row["plan"]),
        severity=Severity(row["severity"]),
        anchor_at=utc_from_timestamp(row["anchor_at"]),
        level=int(row["level"]),
        ack_breached_at=utc_from_timestamp(breached[0]) if breached[0] is not None else None,
        resolve_breached_at=utc_from_timestamp(breached[1]) if breached[1] is not None else None,
        started_by=row["started_by"],
    )


async def save_state(tx: Tx, state: EscalationState, now: datetime) -> None:
    await save_states(tx, [state], now)


async def save_states(tx: Tx, states: Sequence[EscalationState], now: datetime) -> None:
    """Write several incidents' states in one statement (one state per incident), not waited
    for (PostgreSQL sends it with the transaction's next statement)."""
    if not states:
        return
    rows = [
        (
            state.incident_id,
            state.plan,
            state.severity.value,
            state.anchor_at.timestamp(),
            state.level,
            state.ack_breached_at.timestamp() if state.ack_breached_at else None,
            state.resolve_breached_at.timestamp() if state.resolve_breached_at else None,
            now.timestamp(),
            state.started_by,
        )
        for state in states
    ]
    if tx.dialect == "postgres":
        # Arrays, one per column: one statement text whatever the number, prepared once.
        source = (
            " SELECT * FROM unnest(?::text[], ?::int[], ?::text[], ?::float8[], ?::int[],"
            " ?::float8[], ?::float8[], ?::float8[], ?::text[])"
        )
        params: list[Any] = [list(column) for column in zip(*rows, strict=True)]
    else:
        source = " VALUES " + ", ".join("(?, ?, ?, ?, ?, ?, ?, ?, ?)" for _ in rows)
        params = [value for row in rows for value in row]
    await tx.execute_nowait(
        "INSERT INTO escalations (incident_id, plan, severity, anchor_at, level,"
        " ack_breached_at, resolve_breached_at, updated_at, started_by)"
        + source
        + " ON CONFLICT (incident_id) DO UPDATE SET plan = excluded.plan,"
        " severity = excluded.severity, anchor_at = excluded.anchor_at, level = excluded.level,"
        " ack_breached_at = excluded.ack_breached_at,"
        " resolve_breached_at = excluded.resolve_breached_at, updated_at = excluded.updated_at,"
        " started_by = excluded.started_by",
        params,
    )


async def cancel_level(tx: Tx, incident_id: str, level: int, now: datetime, why: str) -> int:
    """Withdraw the scheduled page of one level (it was just paged by hand)."""
    return await tx.execute(
        "UPDATE reminders SET status = 'cancelled', closed_at = ?, outcome = ?"
        " WHERE incident_id = ? AND kind = ? AND level = ?"
        " AND status IN ('pending', 'firing')",
        (now.timestamp(), why, incident_id, ReminderKind.PAGE.value, level),
    )


async def last_page(
    tx: Statements, incident_id: str, level: int
) -> tuple[str | None, datetime] | None:
    """Who paged `level` of the incident last (None: the schedule) and when; None when that
    level was never paged."""
    row = await tx.fetchone(
        "SELECT actor, fired_at FROM reminders WHERE incident_id = ? AND kind = ?"
        " AND level = ? AND status = 'fired' AND fired_at IS NOT NULL"
        " ORDER BY fired_at DESC, id DESC LIMIT 1",
        (incident_id, ReminderKind.PAGE.value, level),
    )
    if row is None:
        return None
    return row["actor"], utc_from_timestamp(row["fired_at"])


# -- page recipients ----------------------------------------------------------------------


async def add_recipient(tx: Tx, reminder_id: int, user_id: str, now: datetime) -> bool:
    """Record that `user_id` gets a DM for this page; False when already recorded."""
    changed = await tx.execute(
        "INSERT INTO page_recipients (reminder_id, user_id, queued_at) VALUES (?, ?, ?)"
        " ON CONFLICT (reminder_id, user_id) DO NOTHING",
        (reminder_id, user_id, now.timestamp()),
    )
    return changed == 1


async def recipients(tx: Statements, reminder_id: int) -> set[str]:
    """The people a page's fan-out queued a DM to (the people named, the groups' members)."""
    rows = await tx.fetchall(
        "SELECT user_id FROM page_recipients WHERE reminder_id = ?", (reminder_id,)
    )
    return {str(row["user_id"]) for row in rows}


async def finish_fanout(tx: Tx, reminder_id: int, now: datetime) -> bool:
    """Record that a page's fan-out queued its last DMs (every group read); False when
    already recorded (a rerun of the fan-out)."""
    changed = await tx.execute(
        "INSERT INTO page_fanouts (reminder_id, finished_at) VALUES (?, ?)"
        " ON CONFLICT (reminder_id) DO NOTHING",
        (reminder_id, now.timestamp()),
    )
    return changed == 1


async def fanout_finished(tx: Statements, reminder_id: int) -> bool:
    """Whether a page's fan-out queued its last DMs (finish_fanout)."""
    row = await tx.fetchone(
        "SELECT 1 AS finished FROM page_fanouts WHERE reminder_id = ?", (reminder_id,)
    )
    return row is not None


async def add_unreached(tx: Tx, reminder_id: int, user_id: str, code: str, now: datetime) -> bool:
    """Record that this page could never reach `user_id` (a person whose DM failed for good,
    or a paging service that refused it); False when already recorded (a rerun of the
    failure's handler)."""
    changed = await tx.execute(
        "INSERT INTO page_unreached (reminder_id, user_id, code, failed_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (reminder_id, user_id) DO NOTHING",
        (reminder_id, user_id, code, now.timestamp()),
    )
    return changed == 1


async def unreached(tx: Statements, reminder_id: int) -> set[str]:
    """The people (and paging services) this page could never reach."""
    rows = await tx.fetchall(
        "SELECT user_id FROM page_unreached WHERE reminder_id = ?", (reminder_id,)
    )
    return {str(row["user_id"]) for row in rows}
