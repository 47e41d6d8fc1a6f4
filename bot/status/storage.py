"""SQL for the status page. Runs inside a caller's transaction.

`public_incidents` is the one query of which incidents the page may show: every filter on
what is public (a drill is never public, say) belongs there and nowhere else.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.clock import utc_from_timestamp
from bot.incidents import storage as incidents
from bot.models import Incident, Status
from bot.store import Tx

# The timeline entries that are status updates: the only ones that can be made public. A
# reopening is one: the page shows the incident open again, and its reason says why.
UPDATE_KINDS = ("updated", "resolved", "reopened")
REOPENED = "reopened"
REOPENED_TEXT = "Reopened."  # a reopening whose reason was left out
_KINDS_SQL = ", ".join(f"'{kind}'" for kind in UPDATE_KINDS)


@dataclass(frozen=True, slots=True)
class PublishedIncident:
    incident: Incident
    public_at: datetime
    reopened_at: datetime | None = None  # its latest reopening: its shown status changed
    # Its latest update withdrawn: what it shows changed (a feed reader must fetch it again).
    withdrawn_at: datetime | None = None
    # Its latest update made public (one put back, or published after the others): the same.
    update_published_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PublishedUpdate:
    incident_id: str
    at: datetime
    status: Status
    said: str


async def version(tx: Tx) -> int:
    """The number bumped by every change to a public fact."""
    row = await tx.fetchone("SELECT version FROM status_page_version WHERE id = 1")
    return int(row["version"]) if row else 0


async def bump(tx: Tx) -> None:
    await tx.execute("UPDATE status_page_version SET version = version + 1 WHERE id = 1")


async def is_public(tx: Tx, incident_id: str) -> bool:
    row = await tx.fetchone(
        "SELECT 1 AS found FROM incidents WHERE id = ? AND public_at IS NOT NULL", (incident_id,)
    )
    return row is not None


async def mark_incident(tx: Tx, incident_id: str, at: datetime, by: str) -> bool:
    """Make the incident public; False when it already was (who and when are kept)."""
    changed = await tx.execute(
        "UPDATE incidents SET public_at = ?, public_by = ? WHERE id = ? AND public_at IS NULL",
        (at.timestamp(), by, incident_id),
    )
    return changed == 1


async def mark_updates(
    tx: Tx, incident_id: str, at: datetime, by: str, *, latest_only: bool = False
) -> int:
    """Make the incident's status updates public (only the newest with `latest_only`);
    how many were not public before. One withdrawn on its own stays withdrawn."""
    latest = (
        f" AND id = (SELECT MAX(id) FROM timeline WHERE incident_id = ? AND kind IN ({_KINDS_SQL}))"
        if latest_only
        else ""
    )
    params: list[object] = [at.timestamp(), by, incident_id]
    if latest_only:
        params.append(incident_id)
    return await tx.execute(
        "UPDATE timeline SET public_at = ?, public_by = ?"
        f" WHERE incident_id = ? AND kind IN ({_KINDS_SQL}) AND public_at IS NULL"
        f" AND withdrawn_at IS NULL{latest}",
        params,
    )


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """One of an incident's status updates: its number (from 1, in the order posted)."""

    id: int
    number: int
    public: bool
    withdrawn: bool  # withdrawn on its own: publishing its incident again leaves it off
    said: str  # its words as typed


async def status_updates(tx: Tx, incident_id: str) -> list[StatusUpdate]:
    """The incident's status updates in the order they were posted, numbered from 1."""
    rows = await tx.fetchall(
        "SELECT id, kind, data, public_at, withdrawn_at FROM timeline"
        f" WHERE incident_id = ? AND kind IN ({_KINDS_SQL}) ORDER BY id",
        (incident_id,),
    )
    return [
        StatusUpdate(
            int(row["id"]),
            number,
            row["public_at"] is not None,
            row["withdrawn_at"] is not None,
            str(json.loads(row["data"]).get("said", ""))
            or (REOPENED_TEXT if row["kind"] == REOPENED else ""),
        )
        for number, row in enumerate(rows, start=1)
    ]


async def withdraw_update(tx: Tx, update_id: int, at: datetime) -> None:
    """Take one status update off the page for good (mark_updates skips it from now on)."""
    await tx.execute(
        "UPDATE timeline SET public_at = NULL, public_by = NULL, withdrawn_at = ? WHERE id = ?",
        (at.timestamp(), update_id),
    )


async def restore_update(tx: Tx, update_id: int, at: datetime, by: str) -> None:
    """Put a withdrawn status update back on the page (its incident's next publication
    includes it again)."""
    await tx.execute(
        "UPDATE timeline SET public_at = ?, public_by = ?, withdrawn_at = NULL WHERE id = ?",
        (at.timestamp(), by, update_id),
    )


async def withdraw_incident(tx: Tx, incident_id: str) -> bool:
    """Take the incident and every status update of it off the page; False when it was not
    public. Publishing it again is a new decision: its updates so far go back with it."""
    changed = await tx.execute(
        "UPDATE incidents SET public_at = NULL, public_by = NULL"
        " WHERE id = ? AND public_at IS NOT NULL",
        (incident_id,),
    )
    await tx.execute(
        "UPDATE timeline SET public_at = NULL, public_by = NULL"
        " WHERE incident_id = ? AND public_at IS NOT NULL",
        (incident_id,),
    )
    return changed == 1


async def public_incidents(tx: Tx, *, resolved_since: datetime) -> list[PublishedIncident]:
    """Every public incident still open, and those resolved since `resolved_since`; newest
    first. The one place that decides which incidents the page may show: a drill never is."""
    rows = await tx.fetchall(
        "SELECT *, (SELECT MAX(t.at) FROM timeline t WHERE t.incident_id = incidents.id"
        f" AND t.kind = '{REOPENED}') AS reopened_at"
        ", (SELECT MAX(w.withdrawn_at) FROM timeline w WHERE w.incident_id = incidents.id)"
        " AS withdrawn_at"
        ", (SELECT MAX(p.public_at) FROM timeline p WHERE p.incident_id = incidents.id"
        f" AND p.kind IN ({_KINDS_SQL})) AS update_published_at"
        " FROM incidents WHERE public_at IS NOT NULL AND NOT drill"
        " AND (status <> 'resolved' OR resolved_at >= ?)"
        " ORDER BY declared_at DESC, id DESC",
        (resolved_since.timestamp(),),
    )
    return [
        PublishedIncident(
            incidents.from_snapshot(row),
            utc_from_timestamp(row["public_at"]),
            utc_from_timestamp(row["reopened_at"]) if row["reopened_at"] is not None else None,
            utc_from_timestamp(row["withdrawn_at"]) if row["withdrawn_at"] is not None else None,
            utc_from_timestamp(row["update_published_at"])
            if row["update_published_at"] is not None
            else None,
        )
        for row in rows
    ]


async def public_updates(tx: Tx, incident_ids: Sequence[str]) -> list[PublishedUpdate]:
    """The published status updates of these incidents, newest first: time, status, words."""
    if not incident_ids:
        return []
    marks = ", ".join("?" for _ in incident_ids)
    rows = await tx.fetchall(
        "SELECT incident_id, at, kind, data FROM timeline"
        f" WHERE incident_id IN ({marks}) AND kind IN ({_KINDS_SQL}) AND public_at IS NOT NULL"
        " ORDER BY at DESC, id DESC",
        list(incident_ids),
    )
    updates = []
    for row in rows:
        data = json.loads(row["data"])
        updates.append(
            PublishedUpdate(
                incident_id=row["incident_id"],
                at=utc_from_timestamp(row["at"]),
                status=Status(data.get("status", Status.INVESTIGATING.value)),
                # Only the words the person wrote, never the timeline line around them.
                said=str(data.get("said", ""))
                or (REOPENED_TEXT if row["kind"] == REOPENED else ""),
            )
        )
    return updates


async def public_impacts(tx: Tx, incident_ids: Sequence[str]) -> dict[str, str]:
    """The impact each incident shows: the one stated by its newest status update on the
    page, else the one it was declared with. An impact stated in an update not published, or
    withdrawn, stays off with its update. An incident none of whose rows keep an impact
    (declared before they were kept) is left out: the caller shows its current impact."""
    if not incident_ids:
        return {}
    marks = ", ".join("?" for _ in incident_ids)
    rows = await tx.fetchall(
        "SELECT incident_id, data FROM timeline"
        f" WHERE incident_id IN ({marks}) AND (kind = 'declared'"
        f" OR (kind IN ({_KINDS_SQL}) AND public_at IS NOT NULL))"
        " ORDER BY id",
        list(incident_ids),
    )
    impacts: dict[str, str] = {}
    for row in rows:
        data = json.loads(row["data"])
        if isinstance(data, dict) and isinstance(data.get("impact"), str):
            impacts[row["incident_id"]] = data["impact"]  # a newer row overrides
    return impacts
