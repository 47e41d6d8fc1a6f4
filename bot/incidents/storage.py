"""SQL for incidents and their timelines. Runs inside a caller's transaction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot import refs
from bot.clock import utc_from_timestamp
from bot.errors import Conflict, NotFound
from bot.models import Incident, Severity, Status, TimelineEvent
from bot.store import Row, Statements, Tx, among, for_update


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _dt(value: float | None) -> datetime | None:
    return utc_from_timestamp(value) if value is not None else None


def _to_row(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "title": incident.title,
        "severity": incident.severity.value,
        "status": incident.status.value,
        "impact": incident.impact,
        "services": json.dumps(list(incident.services)),
        "declared_by": incident.declared_by,
        "declared_at": _ts(incident.declared_at),
        "updated_at": _ts(incident.updated_at),
        "acknowledged_at": _ts(incident.acknowledged_at),
        "acknowledged_by": incident.acknowledged_by,
        "resolved_at": _ts(incident.resolved_at),
        "resolved_by": incident.resolved_by,
        "resolution": incident.resolution,
        "eta": incident.eta,
        "eta_at": _ts(incident.eta_at),
        "current_status": incident.current_status,
        "roles": json.dumps(incident.roles, sort_keys=True),
        "channel_id": incident.channel_id,
        "summary_ts": incident.summary_ts,
        "announce_ts": incident.announce_ts,
        "next_update_due": _ts(incident.next_update_due),
        "version": incident.version,
        "drill": incident.drill,
        "announced_page": json.dumps(list(incident.announced_page)),
    }


def _from_row(row: Row) -> Incident:
    return Incident(
        id=row["id"],
        title=row["title"],
        severity=Severity(row["severity"]),
        status=Status(row["status"]),
        impact=row["impact"],
        services=tuple(json.loads(row["services"])),
        declared_by=row["declared_by"],
        declared_at=utc_from_timestamp(row["declared_at"]),
        updated_at=utc_from_timestamp(row["updated_at"]),
        acknowledged_at=_dt(row["acknowledged_at"]),
        acknowledged_by=row["acknowledged_by"],
        resolved_at=_dt(row["resolved_at"]),
        resolved_by=row["resolved_by"],
        resolution=row["resolution"],
        eta=row["eta"],
        eta_at=_dt(row["eta_at"]),
        current_status=row["current_status"],
        roles=json.loads(row["roles"]),
        channel_id=row["channel_id"],
        summary_ts=row["summary_ts"],
        announce_ts=row["announce_ts"],
        next_update_due=_dt(row["next_update_due"]),
        version=int(row["version"]),
        # An outbox snapshot taken before drills existed has no flag: not a drill.
        drill=bool(row.get("drill") or False),
        announced_page=tuple(json.loads(row.get("announced_page") or "[]")),
    )


async def next_sequence(tx: Statements, day: str) -> int:
    """Hand out the next number of the day; the row lock makes it unique under concurrency.
    Its lock is held until `tx` ends: declarations take it on its own (autocommit)."""
    row = await tx.fetchone(
        "INSERT INTO incident_counters (day, last_seq) VALUES (?, 1)"
        " ON CONFLICT (day) DO UPDATE SET last_seq = incident_counters.last_seq + 1"
        " RETURNING last_seq",
        (day,),
    )
    assert row is not None
    return int(row["last_seq"])


async def give_back_sequence(tx: Statements, day: str, seq: int) -> bool:
    """Hand `seq` back (a declaration refused before it wrote anything) if no later number
    of the day was taken since; False when one was (the number stays unused)."""
    changed = await tx.execute(
        "UPDATE incident_counters SET last_seq = last_seq - 1 WHERE day = ? AND last_seq = ?",
        (day, seq),
    )
    return changed == 1


async def insert(tx: Tx, incident: Incident, *, day: str, seq: int) -> None:
    values = _to_row(incident) | {"day": day, "seq": seq}
    columns = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    # Not waited for: PostgreSQL sends it with the transaction's next statement.
    await tx.execute_nowait(
        f"INSERT INTO incidents ({columns}) VALUES ({marks})", list(values.values())
    )


async def get(tx: Statements, incident_id: str, *, lock: bool = False) -> Incident | None:
    """Read one incident; `lock=True` holds its row until the transaction ends."""
    row = await tx.fetchone(
        "SELECT * FROM incidents WHERE id = ?" + (for_update(tx) if lock else ""),
        (incident_id,),
    )
    return _from_row(row) if row else None


async def get_with_escalation_level(
    tx: Statements, incident_id: str
) -> tuple[Incident, int] | None:
    """One incident and the highest escalation level paged for it (0: none), in one read."""
    row = await tx.fetchone(
        "SELECT i.*, COALESCE(e.level, 0) AS escalation_level FROM incidents i"
        " LEFT JOIN escalations e ON e.incident_id = i.id WHERE i.id = ?",
        (incident_id,),
    )
    return (_from_row(row), int(row["escalation_level"])) if row else None


async def list_with_escalation_level(
    tx: Statements, *, resolved: bool, limit: int | None = None
) -> list[tuple[Incident, int]]:
    """The open (or resolved) incidents, newest first, at most `limit` (None: all), each with
    the highest escalation level paged for it (0: none)."""
    rows = await tx.fetchall(
        "SELECT i.*, COALESCE(e.level, 0) AS escalation_level FROM incidents i"
        " LEFT JOIN escalations e ON e.incident_id = i.id"
        f" WHERE i.status {'=' if resolved else '<>'} 'resolved'"
        " ORDER BY i.declared_at DESC, i.id DESC"
        + (f" LIMIT {int(limit)}" if limit is not None else "")
    )
    return [(_from_row(row), int(row["escalation_level"])) for row in rows]


async def get_many(
    tx: Tx, incident_ids: Sequence[str], *, lock: bool = False
) -> dict[str, Incident]:
    """Read several incidents in one statement; `lock=True` locks their rows in id order
    (the order every batch takes them in, so two batches cannot deadlock)."""
    if not incident_ids:
        return {}
    within, params = among(tx, incident_ids)
    rows = await tx.fetchall(
        f"SELECT * FROM incidents WHERE id {within} ORDER BY id" + (for_update(tx) if lock else ""),
        params,
    )
    return {row["id"]: _from_row(row) for row in rows}


async def require(tx: Tx, incident_id: str, *, lock: bool = False) -> Incident:
    """Read one incident named by a person (any case); NotFound when there is none."""
    incident = await get(tx, incident_id.upper(), lock=lock)
    if incident is None:
        raise NotFound(f"There is no incident {incident_id}.")
    return incident


async def get_by_channel(tx: Tx, channel_id: str) -> Incident | None:
    row = await tx.fetchone(
        "SELECT * FROM incidents WHERE channel_id = ? ORDER BY declared_at DESC LIMIT 1",
        (channel_id,),
    )
    return _from_row(row) if row else None


async def update(tx: Tx, incident: Incident) -> Incident:
    """Write `incident` if nobody changed it since it was read; return it with version + 1."""
    new = incident.evolve(version=incident.version + 1)
    values = _to_row(new)
    values.pop("id")
    assignments = ", ".join(f"{column} = ?" for column in values)
    changed = await tx.execute(
        f"UPDATE incidents SET {assignments} WHERE id = ? AND version = ?",
        [*values.values(), incident.id, incident.version],
    )
    if changed != 1:
        raise Conflict(f"{incident.id} was changed by someone else at the same time; try again")
    return new


def _where(*, open_only: bool, drills: bool | None) -> str:
    """`drills`: None for every incident, False for real ones only, True for drills only."""
    conditions = ["status <> 'resolved'"] if open_only else []
    if drills is not None:
        conditions.append("drill" if drills else "NOT drill")
    return ("WHERE " + " AND ".join(conditions)) if conditions else ""


async def list_incidents(
    tx: Tx,
    *,
    open_only: bool = True,
    limit: int = 50,
    offset: int = 0,
    drills: bool | None = None,
) -> list[Incident]:
    """Newest first; `offset` skips that many (pages of `limit`)."""
    where = _where(open_only=open_only, drills=drills)
    rows = await tx.fetchall(
        f"SELECT * FROM incidents {where} ORDER BY declared_at DESC, id DESC"
        f" LIMIT {int(limit)} OFFSET {int(offset)}"
    )
    return [_from_row(row) for row in rows]


async def open_naming(tx: Tx, service: str) -> list[Incident]:
    """The open incidents, drills left out, whose services name `service` (letter case
    aside), however many incidents are open: newest first."""
    key = service.lower()
    where = _where(open_only=True, drills=False)
    params: list[str] = []
    if key.isascii():
        # A sieve in SQL (the name stands quoted in the JSON array; lower() agrees on both
        # stores for ASCII only); the exact test is below.
        quoted = json.dumps(key).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params.append(f"%{quoted}%")
        where += " AND lower(services) LIKE ? ESCAPE '\\'"
    rows = await tx.fetchall(
        f"SELECT * FROM incidents {where} ORDER BY declared_at DESC, id DESC", params
    )
    found = [_from_row(row) for row in rows]
    return [i for i in found if key in {name.lower() for name in i.services}]


async def count_incidents(tx: Tx, *, open_only: bool = True, drills: bool | None = None) -> int:
    where = _where(open_only=open_only, drills=drills)
    row = await tx.fetchone(f"SELECT COUNT(*) AS n FROM incidents {where}")
    return int(row["n"]) if row else 0


_TIMELINE = "INSERT INTO timeline (incident_id, at, actor, kind, text, data, source) VALUES "
_TIMELINE_ROW = "(?, ?, ?, ?, ?, ?, ?)"
_TIMELINE_ROWS_PER_INSERT = 140  # 980 parameters: inside SQLite's oldest limit of 999
# psycopg caches how it converts a statement only with fewer parameters than this.
_CACHED_PARAMETERS = 50


def _timeline_values(event: TimelineEvent) -> tuple[Any, ...]:
    return (
        event.incident_id,
        event.at.timestamp(),
        event.actor,
        event.kind,
        event.text,
        json.dumps(_with_said(event.data, event.said, event.parts), default=str),
        event.source,
    )


async def add_timeline(tx: Tx, event: TimelineEvent) -> None:
    """Add one timeline event; not waited for (PostgreSQL sends it with the transaction's
    next statement, which sees it)."""
    await tx.execute_nowait(_TIMELINE + _TIMELINE_ROW, _timeline_values(event))


async def add_timelines(tx: Tx, events: Sequence[TimelineEvent]) -> None:
    """Add several timeline events with one statement (per 140), in order; not waited for
    (PostgreSQL sends it with the transaction's next statement)."""
    if tx.dialect == "postgres" and len(events) * 7 >= _CACHED_PARAMETERS:
        # Arrays, one per column: one statement text whatever the number, prepared once.
        # A few rows (a declaration's two) go as VALUES below: cheaper for psycopg to send
        # than arrays, and under its cache's 50 parameters.
        columns = list(zip(*(_timeline_values(event) for event in events), strict=True))
        await tx.execute_nowait(
            "INSERT INTO timeline (incident_id, at, actor, kind, text, data, source)"
            " SELECT incident_id, at, actor, kind, text, data, source"
            " FROM unnest(?::text[], ?::float8[], ?::text[], ?::text[], ?::text[],"
            " ?::text[], ?::text[]) WITH ORDINALITY AS line (incident_id, at, actor, kind,"
            " text, data, source, n) ORDER BY n",
            [list(column) for column in columns],
        )
        return
    for start in range(0, len(events), _TIMELINE_ROWS_PER_INSERT):
        chunk = events[start : start + _TIMELINE_ROWS_PER_INSERT]
        await tx.execute_nowait(
            _TIMELINE + ", ".join([_TIMELINE_ROW] * len(chunk)),
            [value for event in chunk for value in _timeline_values(event)],
        )


async def timeline(tx: Tx, incident_id: str) -> list[TimelineEvent]:
    rows = await tx.fetchall(
        "SELECT * FROM timeline WHERE incident_id = ? ORDER BY at, id", (incident_id,)
    )
    return [_event(row) for row in rows]


# The key under which an event's `said` is kept in its data.
_SAID = "said"
# The key under which an event's parts (bot.refs) are kept in its data.
_PARTS = "parts"


def _with_said(data: dict[str, Any], said: str, parts: refs.Rich) -> dict[str, Any]:
    data = {**data, _SAID: said} if said else data
    return {**data, _PARTS: refs.dump(parts)} if parts else data


def _event(row: Row) -> TimelineEvent:
    data = json.loads(row["data"])
    text: str = row["text"]
    said = data.pop(_SAID, "") if isinstance(data, dict) else ""
    parts = refs.load(data.pop(_PARTS, None)) if isinstance(data, dict) else None
    if not isinstance(said, str) or not text.endswith(said):
        # A `said` that does not end the text (an edited row) marks the whole line as words.
        said, parts = text, (text,)
    elif parts is None or not _ends(parts, said):
        parts = refs.legacy(text, said)  # a row written before parts were kept
    return TimelineEvent(
        id=int(row["id"]),
        incident_id=row["incident_id"],
        at=utc_from_timestamp(row["at"]),
        actor=row["actor"],
        kind=row["kind"],
        text=text,
        data=data,
        source=row["source"],
        said=said,
        parts=parts,
    )


def _ends(parts: refs.Rich, said: str) -> bool:
    return not said or (bool(parts) and isinstance(parts[-1], str) and parts[-1].endswith(said))


async def timeline_tail(
    tx: Tx, incident_id: str, *, limit: int, kinds: tuple[str, ...] = ()
) -> list[TimelineEvent]:
    """The last `limit` events (of `kinds`, when given), newest first."""
    where = "incident_id = ?"
    params: list[object] = [incident_id]
    if kinds:
        where += " AND kind IN (" + ", ".join("?" for _ in kinds) + ")"
        params += kinds
    rows = await tx.fetchall(
        f"SELECT * FROM timeline WHERE {where} ORDER BY at DESC, id DESC LIMIT {int(limit)}",
        params,
    )
    return [_event(row) for row in rows]


async def has_timeline_source(tx: Tx, incident_id: str, source: str) -> bool:
    """Whether the incident's timeline already copies `source`."""
    row = await tx.fetchone(
        "SELECT 1 AS found FROM timeline WHERE incident_id = ? AND source = ?",
        (incident_id, source),
    )
    return row is not None


def snapshot(incident: Incident) -> dict[str, Any]:
    """The incident as JSON-safe data (an outbox payload that must show it as it was)."""
    return _to_row(incident)


def from_snapshot(data: dict[str, Any]) -> Incident:
    return _from_row(data)
