"""SQL for the reminders table, every kind alike. Runs inside a caller's Tx.

Claims are single conditional UPDATEs: whoever changes the row owns it, and a claim that
outlived its holder (a crash between claim and fire) can be taken over once it expires.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime

from bot.clock import utc_from_timestamp
from bot.reminders.model import PlannedReminder, Reminder, ReminderStatus
from bot.store import Row, Tx, among, skip_locked

_CLAIMABLE = "(status = 'pending' OR (status = 'firing' AND claimed_until < ?))"


def _dt(value: float | None) -> datetime | None:
    return utc_from_timestamp(value) if value is not None else None


def _reminder(row: Row) -> Reminder:
    return Reminder(
        id=int(row["id"]),
        incident_id=row["incident_id"] or "",  # "" for a reminder about a `subject` instead
        plan=int(row["plan"]),
        kind=row["kind"],
        level=int(row["level"]),
        due_at=utc_from_timestamp(row["due_at"]),
        status=ReminderStatus(row["status"]),
        notify=tuple(json.loads(row["notify"])),
        reason=row["reason"],
        actor=row["actor"],
        created_at=_dt(row["created_at"]),
        claimed_by=row["claimed_by"],
        fired_at=_dt(row["fired_at"]),
        outcome=row["outcome"],
        subject=row.get("subject"),
    )


# -- reminders ----------------------------------------------------------------------------


async def insert(
    tx: Tx,
    incident_id: str | None,
    plan: int,
    planned: PlannedReminder,
    now: datetime,
    *,
    status: ReminderStatus = ReminderStatus.PENDING,
    claimed_by: str | None = None,
    claimed_until: float | None = None,
    reason: str = "",
    actor: str | None = None,
) -> int:
    """Insert a reminder about an incident, a `subject` (`planned.subject`, such as
    "remediation:42", whose kind's handler knows what it means), or both."""
    row = await tx.fetchone(
        "INSERT INTO reminders (incident_id, plan, kind, level, due_at, status, notify, reason,"
        " actor, created_at, claimed_by, claimed_until, subject)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            incident_id,
            plan,
            str(planned.kind),
            planned.level,
            planned.due_at.timestamp(),
            status.value,
            json.dumps(list(planned.notify)),
            reason,
            actor,
            now.timestamp(),
            claimed_by,
            claimed_until,
            planned.subject,
        ),
    )
    assert row is not None
    return int(row["id"])


async def insert_many(
    tx: Tx,
    incident_id: str | None,
    plan: int,
    planned: Sequence[PlannedReminder],
    now: datetime,
    *,
    owner: str | None = None,
    claimed_until: float | None = None,
) -> list[Reminder]:
    """Insert `planned` in one statement and return them as stored, in the order given.

    With an `owner`, those due by `now` are inserted already claimed by it (status firing,
    until `claimed_until`), to be fired in `tx` itself, as the engine's `insert_firing` does
    for one. A declaration plans five or so at once: one round trip instead of one each."""
    if not planned:
        return []
    # What every row shares goes once (`s`), each row only what is its own (`v`), in their
    # order (its first column): 5 + 6 a row parameters, so up to 7 rows stay under psycopg's
    # 50, past which it parses the text again on every call instead of caching it. The casts
    # type a column whose parameters are all NULL, as PostgreSQL reads such a one as text.
    params: list[object] = [incident_id, plan, now.timestamp(), owner, claimed_until]
    for one in planned:
        claimed = owner is not None and one.due_at <= now
        params += (
            str(one.kind),
            one.level,
            one.due_at.timestamp(),
            json.dumps(list(one.notify)),
            one.subject,
            1 if claimed else 0,
        )
    rows = ", ".join(
        f"({position}, ?, CAST(? AS INTEGER), CAST(? AS DOUBLE PRECISION), ?, ?,"
        " CAST(? AS INTEGER))"
        for position in range(len(planned))
    )
    stored = await tx.fetchall(
        "INSERT INTO reminders (incident_id, plan, kind, level, due_at, status, notify, reason,"
        " actor, created_at, claimed_by, claimed_until, subject)"
        " SELECT s.column1, s.column2, v.column2, v.column3, v.column4,"
        " CASE WHEN v.column7 = 1 THEN 'firing' ELSE 'pending' END, v.column5, '', NULL,"
        " s.column3, CASE WHEN v.column7 = 1 THEN s.column4 END,"
        " CASE WHEN v.column7 = 1 THEN s.column5 END, v.column6"
        " FROM (VALUES (CAST(? AS TEXT), CAST(? AS INTEGER), CAST(? AS DOUBLE PRECISION),"
        " CAST(? AS TEXT), CAST(? AS DOUBLE PRECISION))) AS s,"
        f" (VALUES {rows}) AS v ORDER BY v.column1 RETURNING *",
        params,
    )
    # RETURNING's order is not promised; the ids are: both stores number a multi-row
    # INSERT's rows in the order of its VALUES.
    inserted = sorted((_reminder(row) for row in stored), key=lambda r: r.id)
    assert [(r.kind, r.level) for r in inserted] == [(str(p.kind), p.level) for p in planned]
    return inserted


async def cancel_subject(
    tx: Tx, subject: str, now: datetime, why: str, *, firing: int | None = None
) -> int:
    """Withdraw the live reminders about `subject` (a request decided, an item closed), but
    `firing`, the reminder whose handler withdraws them: its firing closes it (cancelled
    under it, its firing found its claim lost and rolled back what it did)."""
    return await tx.execute(
        "UPDATE reminders SET status = 'cancelled', closed_at = ?, outcome = ?"
        " WHERE subject = ? AND status IN ('pending', 'firing') AND id <> ?",
        (now.timestamp(), why, subject, -1 if firing is None else firing),
    )


async def cancel(tx: Tx, incident_id: str, kinds: Iterable[str], now: datetime, why: str) -> int:
    """Withdraw the live (pending or claimed) reminders of `kinds`; return how many.

    A claimed one is cancelled too: its firing transaction finds it cancelled and exits.
    """
    names = sorted(str(kind) for kind in kinds)
    if not names:
        return 0
    marks = ", ".join("?" for _ in names)
    return await tx.execute(
        "UPDATE reminders SET status = 'cancelled', closed_at = ?, outcome = ?"
        f" WHERE incident_id = ? AND status IN ('pending', 'firing') AND kind IN ({marks})",
        (now.timestamp(), why, incident_id, *names),
    )


async def claim(
    tx: Tx, reminder_id: int, owner: str, now: datetime, claim_seconds: float
) -> Reminder | None:
    """Claim one due reminder for `owner`; None when it is not due, not claimable or gone."""
    ts = now.timestamp()
    row = await tx.fetchone(
        "UPDATE reminders SET status = 'firing', claimed_by = ?, claimed_until = ?,"
        f" attempts = attempts + 1 WHERE id = ? AND due_at <= ? AND {_CLAIMABLE}"
        " RETURNING *",
        (owner, ts + claim_seconds, reminder_id, ts, ts),
    )
    return _reminder(row) if row else None


async def claim_due(
    tx: Tx, owner: str, now: datetime, claim_seconds: float, limit: int
) -> list[Reminder]:
    """Claim up to `limit` due reminders, oldest first; rows another process holds are skipped."""
    ts = now.timestamp()
    rows = await tx.fetchall(
        "UPDATE reminders SET status = 'firing', claimed_by = ?, claimed_until = ?,"
        f" attempts = attempts + 1 WHERE {_CLAIMABLE} AND id IN ("
        f" SELECT id FROM reminders WHERE due_at <= ? AND {_CLAIMABLE}"
        f" ORDER BY due_at LIMIT {int(limit)}{skip_locked(tx)}) RETURNING *",
        (owner, ts + claim_seconds, ts, ts, ts),
    )
    return sorted((_reminder(row) for row in rows), key=lambda r: (r.due_at, r.id))


async def claim_many(
    tx: Tx, reminder_ids: Sequence[int], owner: str, now: datetime, claim_seconds: float
) -> list[Reminder]:
    """Claim those of `reminder_ids` that are due and claimable, in one statement; rows
    another transaction holds are skipped (their holder is claiming or withdrawing them)."""
    if not reminder_ids:
        return []
    ts = now.timestamp()
    within, ids = among(tx, reminder_ids)
    rows = await tx.fetchall(
        "UPDATE reminders SET status = 'firing', claimed_by = ?, claimed_until = ?,"
        f" attempts = attempts + 1 WHERE {_CLAIMABLE} AND id IN ("
        f" SELECT id FROM reminders WHERE id {within} AND due_at <= ? AND {_CLAIMABLE}"
        f" ORDER BY id{skip_locked(tx)}) RETURNING *",
        (owner, ts + claim_seconds, ts, *ids, ts, ts),
    )
    return sorted((_reminder(row) for row in rows), key=lambda r: (r.due_at, r.id))


async def existing(tx: Tx, reminder_ids: Sequence[int]) -> set[int]:
    """Which of `reminder_ids` name a reminder."""
    if not reminder_ids:
        return set()
    within, ids = among(tx, reminder_ids)
    rows = await tx.fetchall(f"SELECT id FROM reminders WHERE id {within}", ids)
    return {int(row["id"]) for row in rows}


async def get_many(tx: Tx, reminder_ids: Sequence[int]) -> dict[int, Reminder]:
    """Read several reminders in one statement, by id."""
    if not reminder_ids:
        return {}
    within, ids = among(tx, reminder_ids)
    rows = await tx.fetchall(f"SELECT * FROM reminders WHERE id {within}", ids)
    return {int(row["id"]): _reminder(row) for row in rows}


async def release(tx: Tx, reminder_ids: Sequence[int], owner: str) -> int:
    """Give claims back (firing failed, or the process is stopping, before they fired)."""
    if not reminder_ids:
        return 0
    marks = ", ".join("?" for _ in reminder_ids)
    return await tx.execute(
        "UPDATE reminders SET status = 'pending', claimed_by = NULL, claimed_until = NULL"
        f" WHERE id IN ({marks}) AND status = 'firing' AND claimed_by = ?",
        (*reminder_ids, owner),
    )


async def get(tx: Tx, reminder_id: int) -> Reminder | None:
    row = await tx.fetchone("SELECT * FROM reminders WHERE id = ?", (reminder_id,))
    return _reminder(row) if row else None


async def finish(
    tx: Tx,
    reminder_id: int,
    owner: str,
    status: ReminderStatus,
    now: datetime,
    outcome: str,
) -> bool:
    """Close a claimed reminder as fired or skipped; False when the claim was lost."""
    changed = await tx.execute(
        "UPDATE reminders SET status = ?, fired_at = ?, closed_at = ?, outcome = ?,"
        " claimed_until = NULL WHERE id = ? AND status = 'firing' AND claimed_by = ?",
        (
            status.value,
            now.timestamp() if status is ReminderStatus.FIRED else None,
            now.timestamp(),
            outcome,
            reminder_id,
            owner,
        ),
    )
    return changed == 1


async def finish_many(
    tx: Tx,
    owner: str,
    now: datetime,
    closing: Sequence[tuple[int, ReminderStatus, str]],
) -> set[int]:
    """Close claimed reminders as fired or skipped, each with its outcome, in one statement;
    return the ids closed (one missing lost its claim)."""
    if not closing:
        return set()
    ts = now.timestamp()
    ids = [rid for rid, _, _ in closing]
    statuses = [status.value for _, status, _ in closing]
    outcomes = [outcome for _, _, outcome in closing]
    if tx.dialect == "postgres":
        # Arrays: one statement text whatever the batch holds, so it is prepared once.
        rows = await tx.fetchall(
            "UPDATE reminders SET status = closing.status, outcome = closing.outcome,"
            " fired_at = CASE WHEN closing.status = 'fired' THEN ?::float8 END,"
            " closed_at = ?, claimed_until = NULL"
            " FROM unnest(?::bigint[], ?::text[], ?::text[]) AS closing (id, status, outcome)"
            " WHERE reminders.id = closing.id AND reminders.status = 'firing'"
            " AND reminders.claimed_by = ? RETURNING reminders.id",
            (ts, ts, ids, statuses, outcomes, owner),
        )
        return {int(row["id"]) for row in rows}
    # SET sees the row as it was: which were fired is said by id, as the rest is.
    cases = " ".join("WHEN ? THEN ?" for _ in closing)
    fired = [rid for rid, status, _ in closing if status is ReminderStatus.FIRED]
    rows = await tx.fetchall(
        f"UPDATE reminders SET status = CASE id {cases} END, outcome = CASE id {cases} END,"
        f" fired_at = CASE WHEN id IN ({', '.join('?' for _ in fired) or 'NULL'}) THEN ? END,"
        f" closed_at = ?, claimed_until = NULL WHERE id IN ({', '.join('?' for _ in ids)})"
        " AND status = 'firing' AND claimed_by = ? RETURNING id",
        [
            *(value for pair in zip(ids, statuses, strict=True) for value in pair),
            *(value for pair in zip(ids, outcomes, strict=True) for value in pair),
            *fired,
            ts,
            ts,
            *ids,
            owner,
        ],
    )
    return {int(row["id"]) for row in rows}


async def insert_batch(
    tx: Tx,
    planned: Sequence[tuple[str | None, int, PlannedReminder]],
    now: datetime,
) -> list[int]:
    """Insert pending reminders, each (incident_id, plan, planned), in one statement;
    return their ids in the order given."""
    if not planned:
        return []
    rows = await tx.fetchall(
        "INSERT INTO reminders (incident_id, plan, kind, level, due_at, status, notify, reason,"
        " actor, created_at, claimed_by, claimed_until, subject) VALUES "
        + ", ".join("(?, ?, ?, ?, ?, 'pending', ?, '', NULL, ?, NULL, NULL, ?)" for _ in planned)
        + " RETURNING id",
        [
            value
            for incident_id, plan, reminder in planned
            for value in (
                incident_id,
                plan,
                str(reminder.kind),
                reminder.level,
                reminder.due_at.timestamp(),
                json.dumps(list(reminder.notify)),
                now.timestamp(),
                reminder.subject,
            )
        ],
    )
    # Ids are handed out in the order of the VALUES (RETURNING does not promise its order).
    return sorted(int(row["id"]) for row in rows)


async def overdue_seconds(tx: Tx, now: datetime) -> float:
    """How long past its due time the most overdue reminder nobody holds is (0 when none):
    pending, or firing under a claim that expired with its holder."""
    row = await tx.fetchone(
        f"SELECT MIN(due_at) AS due FROM reminders WHERE due_at <= ? AND {_CLAIMABLE}",
        (now.timestamp(), now.timestamp()),
    )
    if row is None or row["due"] is None:
        return 0.0
    return max(0.0, now.timestamp() - float(row["due"]))


async def upcoming(tx: Tx, until: datetime, limit: int) -> list[tuple[int, datetime]]:
    """(id, due_at) of reminders due by `until` that nobody holds, soonest first."""
    rows = await tx.fetchall(
        "SELECT id, due_at FROM reminders WHERE status = 'pending' AND due_at <= ?"
        f" ORDER BY due_at LIMIT {int(limit)}",
        (until.timestamp(),),
    )
    return [(int(row["id"]), utc_from_timestamp(row["due_at"])) for row in rows]


async def for_incident(
    tx: Tx, incident_id: str, statuses: Sequence[ReminderStatus] = ()
) -> list[Reminder]:
    where = "incident_id = ?"
    params: list[object] = [incident_id]
    if statuses:
        where += f" AND status IN ({', '.join('?' for _ in statuses)})"
        params += [status.value for status in statuses]
    rows = await tx.fetchall(f"SELECT * FROM reminders WHERE {where} ORDER BY due_at, id", params)
    return [_reminder(row) for row in rows]
