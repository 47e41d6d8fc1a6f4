"""SQL for the paging services paged per incident. Runs inside a caller's Tx."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.store import Tx


@dataclass(frozen=True, slots=True)
class PagedAlert:
    incident_id: str
    provider: str
    state: str
    level: int
    outage_since: float | None
    updated_at: float


async def for_incident(tx: Tx, incident_id: str) -> list[PagedAlert]:
    rows = await tx.fetchall(
        "SELECT incident_id, provider, state, level, outage_since, updated_at"
        " FROM paging_alerts WHERE incident_id = ? ORDER BY provider",
        (incident_id,),
    )
    return [
        PagedAlert(
            row["incident_id"],
            row["provider"],
            row["state"],
            int(row["level"]),
            row["outage_since"],
            float(row["updated_at"]),
        )
        for row in rows
    ]


async def get(tx: Tx, incident_id: str, provider: str) -> PagedAlert | None:
    found = [alert for alert in await for_incident(tx, incident_id) if alert.provider == provider]
    return found[0] if found else None


async def set_state(
    tx: Tx, incident_id: str, provider: str, state: str, now: datetime, *, level: int = 1
) -> None:
    await tx.execute(
        "INSERT INTO paging_alerts (incident_id, provider, state, level, updated_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (incident_id, provider) DO UPDATE SET"
        " state = excluded.state, level = excluded.level, updated_at = excluded.updated_at",
        (incident_id, provider, state, level, now.timestamp()),
    )


async def mark_outage(tx: Tx, incident_id: str, provider: str, now: datetime, error: str) -> bool:
    """Record that `provider` is failing; True only for the first call of an outage."""
    changed = await tx.execute(
        "UPDATE paging_alerts SET outage_since = ?, last_error = ?"
        " WHERE incident_id = ? AND provider = ? AND outage_since IS NULL",
        (now.timestamp(), error[:300], incident_id, provider),
    )
    return changed == 1


async def clear_outage(tx: Tx, incident_id: str, provider: str) -> bool:
    """The provider answered again; True when an outage had been told."""
    changed = await tx.execute(
        "UPDATE paging_alerts SET outage_since = NULL, last_error = ''"
        " WHERE incident_id = ? AND provider = ? AND outage_since IS NOT NULL",
        (incident_id, provider),
    )
    return changed == 1
