"""The alerts firing now for an incident, as the catch-up reads them (its FiringAlerts port)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.alerts.models import NO_START
from bot.clock import utc_from_timestamp
from bot.incidents.catchup import FiringAlert
from bot.models import Incident
from bot.store import Tx


class RecordedFiringAlerts:
    """Reads bot.alerts' records: each alert attached to the incident and still firing (all
    of them: the catch-up shows a few and counts the rest)."""

    async def firing_for(self, tx: Tx, incident: Incident) -> Sequence[FiringAlert]:
        rows = await tx.fetchall(
            "SELECT name, starts_at, received_at, source FROM alerts WHERE incident_id = ?"
            " AND status = 'firing' ORDER BY starts_at, id",
            (incident.id,),
        )
        return [
            FiringAlert(
                name=row["name"],
                since=_since(row["starts_at"]) or utc_from_timestamp(float(row["received_at"])),
                source=row["source"],
            )
            for row in rows
        ]


def _since(starts_at: str) -> datetime | None:
    """When the monitor says it started; None for a generic alert sent without
    `started_at`, recorded as starting in 1971 (bot.alerts.models): its first receipt is
    when it is known to fire."""
    try:
        since = datetime.fromisoformat(starts_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    return since if since > NO_START else None
