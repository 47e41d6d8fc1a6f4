"""SQL for alerts. Runs inside a caller's transaction (see migration 0012_alerts).

An occurrence is its monitor's own: (source, fingerprint, starts_at), `source` the endpoint
it came to (0025): Grafana and Alertmanager compute fingerprints from the labels alone, so
the same labels from both are two alerts, neither resolving nor superseding the other."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.alerts.models import RESOLVED, Alert
from bot.alerts.routing import Routed
from bot.store import Row, Tx, for_update


@dataclass(frozen=True, slots=True)
class StoredAlert:
    id: int
    service: str
    name: str
    severity: str | None
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    links: list[tuple[str, str]]
    incident_id: str | None
    source: str = "alertmanager"
    fingerprint: str = ""
    outcome: str = ""

    @property
    def summary(self) -> str:
        return self.annotations.get("summary", "") or self.annotations.get("title", "")


def stored_alert(row: Row) -> StoredAlert:
    return StoredAlert(
        id=int(row["id"]),
        service=row["service"],
        name=row["name"],
        severity=row["severity"],
        status=row["status"],
        labels=json.loads(row["labels"]),
        annotations=json.loads(row["annotations"]),
        links=[(str(text), str(url)) for text, url in json.loads(row["links"])],
        incident_id=row["incident_id"],
        source=row["source"],
        fingerprint=row["fingerprint"],
        outcome=row["outcome"],
    )


async def lock_service(tx: Tx, service: str, now: datetime) -> str | None:
    """Lock the service's row (created on first use) until the commit; its incident's ID.

    Two replicas deciding about one service queue here: the second sees what the first did.
    """
    await tx.execute(
        "INSERT INTO alert_services (service, incident_id, updated_at) VALUES (?, NULL, ?)"
        " ON CONFLICT (service) DO NOTHING",
        (service, now.timestamp()),
    )
    row = await tx.fetchone(
        "SELECT incident_id FROM alert_services WHERE service = ?" + for_update(tx), (service,)
    )
    return row["incident_id"] if row else None


async def set_service_incident(tx: Tx, service: str, incident_id: str, now: datetime) -> None:
    await tx.execute(
        "UPDATE alert_services SET incident_id = ?, updated_at = ? WHERE service = ?",
        (incident_id, now.timestamp(), service),
    )


_COLUMNS = (
    "fingerprint, starts_at, source, service, name, severity, status, outcome, labels,"
    " annotations, links, received_at, resolved_at, cut_short"
)
_ROWS_PER_INSERT = 200  # 14 parameters a row: well under either database's limit


def _values(
    item: Routed, now: datetime, outcome: str, status: str, cut_short: bool
) -> tuple[Any, ...]:
    alert: Alert = item.alert
    return (
        alert.fingerprint,
        alert.starts_key,
        alert.source,
        item.service,
        alert.name[:200],
        item.severity,
        status,
        outcome,
        json.dumps(alert.labels, sort_keys=True),
        json.dumps(alert.annotations, sort_keys=True),
        json.dumps([list(link) for link in alert.links]),
        now.timestamp(),
        now.timestamp() if status == RESOLVED else None,
        int(cut_short),
    )


async def insert_many(
    tx: Tx,
    items: list[tuple[Routed, str]],
    now: datetime,
    *,
    status: str | None = None,
    cut_short: bool = False,
) -> dict[tuple[str, str], int]:
    """Record occurrences (each with its outcome) in a few statements; the IDs of those that
    were new, by (fingerprint, starts_at) (one post's alerts share their source). One already
    recorded is skipped, not an error. `cut_short`: their post left part of its group out."""
    inserted: dict[tuple[str, str], int] = {}
    for start in range(0, len(items), _ROWS_PER_INSERT):
        chunk = items[start : start + _ROWS_PER_INSERT]
        params: list[Any] = []
        for item, outcome in chunk:
            params += _values(item, now, outcome, status or item.alert.status, cut_short)
        marks = ", ".join(["(" + ", ".join("?" * 14) + ")"] * len(chunk))
        rows = await tx.fetchall(
            f"INSERT INTO alerts ({_COLUMNS}) VALUES {marks}"
            " ON CONFLICT (source, fingerprint, starts_at) DO NOTHING"
            " RETURNING id, fingerprint, starts_at",
            params,
        )
        inserted |= {(row["fingerprint"], row["starts_at"]): int(row["id"]) for row in rows}
    return inserted


async def known(tx: Tx, source: str, alerts: list[Alert]) -> dict[tuple[str, str], str]:
    """The status of each of `alerts` (from `source`) already recorded, by (fingerprint,
    starts_at): one query per 500, so a resend of a large group costs no statement per alert."""
    found: dict[tuple[str, str], str] = {}
    fingerprints = sorted({alert.fingerprint for alert in alerts})
    for start in range(0, len(fingerprints), 500):
        chunk = fingerprints[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        rows = await tx.fetchall(
            "SELECT fingerprint, starts_at, status FROM alerts"
            f" WHERE source = ? AND fingerprint IN ({marks})",
            (source, *chunk),
        )
        found |= {(row["fingerprint"], row["starts_at"]): row["status"] for row in rows}
    return found


async def mark_resolved(tx: Tx, alert: Alert, now: datetime) -> bool:
    """Mark a firing occurrence resolved, its resolution to be told; False when it is not
    recorded as firing."""
    changed = await tx.execute(
        "UPDATE alerts SET status = ?, resolved_at = ?, resolution_pending = 1"
        " WHERE source = ? AND fingerprint = ? AND starts_at = ? AND status = 'firing'",
        (RESOLVED, now.timestamp(), alert.source, alert.fingerprint, alert.starts_key),
    )
    return changed == 1


async def resolve_by_key(tx: Tx, source: str, fingerprint: str, now: datetime) -> str | None:
    """A resolution naming no start (a generic alert's, by its dedup key alone): each firing
    occurrence of the fingerprint marked resolved, to be told. "resolved" when one was
    firing, "duplicate" when every one was resolved already, None when none is recorded."""
    changed = await tx.execute(
        "UPDATE alerts SET status = ?, resolved_at = ?, resolution_pending = 1"
        " WHERE source = ? AND fingerprint = ? AND status = 'firing'",
        (RESOLVED, now.timestamp(), source, fingerprint),
    )
    if changed:
        return "resolved"
    row = await tx.fetchone(
        "SELECT 1 AS found FROM alerts WHERE source = ? AND fingerprint = ?", (source, fingerprint)
    )
    return "duplicate" if row is not None else None


async def supersede(tx: Tx, source: str, fingerprints: list[str], now: datetime) -> int:
    """Mark resolved (to be told) every firing occurrence of these fingerprints (`source`'s)
    that a later one of the same fingerprint and source follows: a monitor holds one alert
    per fingerprint, so a new start means the earlier one ended, even when its resolution was
    never sent (Alertmanager sends none when the alert clears and fires again between two
    notifications). How many."""
    changed = 0
    unique = sorted(set(fingerprints))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        changed += await tx.execute(
            "UPDATE alerts SET status = ?, resolved_at = ?, resolution_pending = 1"
            f" WHERE source = ? AND fingerprint IN ({marks}) AND status = 'firing'"
            " AND starts_at < (SELECT MAX(later.starts_at) FROM alerts later"
            " WHERE later.source = alerts.source AND later.fingerprint = alerts.fingerprint)",
            (RESOLVED, now.timestamp(), source, *chunk),
        )
    return changed


async def pending_services(tx: Tx, *, skip: Collection[str] = (), limit: int = 100) -> list[str]:
    """Services with alerts recorded and not yet decided (firing or resolved), but `skip`."""
    # Skipped in the query, not after it: a first page of services that all fail must not
    # hide the services after it.
    others = f" AND service NOT IN ({', '.join(['?'] * len(skip))})" if skip else ""
    rows = await tx.fetchall(
        "SELECT DISTINCT service FROM alerts"
        f" WHERE (outcome = 'pending' OR resolution_pending = 1){others}"
        f" ORDER BY service LIMIT {limit}",
        tuple(skip),
    )
    return [str(row["service"]) for row in rows]


async def pending_firing(tx: Tx, service: str, *, limit: int = 5000) -> list[StoredAlert]:
    rows = await tx.fetchall(
        f"SELECT * FROM alerts WHERE service = ? AND outcome = 'pending' ORDER BY id LIMIT {limit}",
        (service,),
    )
    return [stored_alert(row) for row in rows]


async def pending_resolutions(tx: Tx, service: str, *, limit: int = 5000) -> list[StoredAlert]:
    """Resolutions not yet told; taken (the flag cleared) by this call.

    Their incidents' rows in alert_incidents are locked first, as a batch's claim
    (claim_batch) takes them before the alerts: locking the alerts first, this waited for a
    claim under way that waited for these alerts, a deadlock PostgreSQL broke by aborting
    one of them."""
    rows = await tx.fetchall(
        "SELECT * FROM alerts WHERE service = ? AND resolution_pending = 1"
        f" ORDER BY id LIMIT {limit}",
        (service,),
    )
    found = [stored_alert(row) for row in rows]
    for incident_id in sorted({a.incident_id for a in found if a.incident_id}):
        await tx.fetchone(
            "SELECT post_queued FROM alert_incidents WHERE incident_id = ?" + for_update(tx),
            (incident_id,),
        )
    await _set_many(tx, "resolution_pending = 0", [a.id for a in found])
    return found


async def set_outcome(tx: Tx, ids: list[int], outcome: str) -> None:
    await _set_many(tx, "outcome = ?", ids, (outcome,))


async def _set_many(tx: Tx, assignment: str, ids: list[int], values: tuple[Any, ...] = ()) -> None:
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        await tx.execute(f"UPDATE alerts SET {assignment} WHERE id IN ({marks})", (*values, *chunk))


async def attach(tx: Tx, ids: list[int], incident_id: str, outcome: str) -> None:
    await _set_many(tx, "incident_id = ?, outcome = ?", ids, (incident_id, outcome))


async def firing_count(tx: Tx, incident_id: str) -> int:
    row = await tx.fetchone(
        "SELECT COUNT(*) AS n FROM alerts WHERE incident_id = ? AND status = 'firing'",
        (incident_id,),
    )
    return int(row["n"]) if row else 0


async def counts(tx: Tx, incident_id: str) -> tuple[int, int]:
    """(firing, resolved) alerts of an incident."""
    rows = await tx.fetchall(
        "SELECT status, COUNT(*) AS n FROM alerts WHERE incident_id = ? GROUP BY status",
        (incident_id,),
    )
    found = {row["status"]: int(row["n"]) for row in rows}
    return found.get("firing", 0), found.get(RESOLVED, 0)


async def cut_short(tx: Tx, incident_id: str) -> bool:
    """Whether an alert of the incident came in a post that left part of its group out:
    a resolution among those left out never reaches the bot (README "Alerts in")."""
    row = await tx.fetchone(
        "SELECT 1 AS one FROM alerts WHERE incident_id = ? AND cut_short = 1 LIMIT 1",
        (incident_id,),
    )
    return row is not None


async def ensure_incident(tx: Tx, incident_id: str, service: str) -> None:
    await tx.execute(
        "INSERT INTO alert_incidents (incident_id, service) VALUES (?, ?)"
        " ON CONFLICT (incident_id) DO NOTHING",
        (incident_id, service),
    )


async def queue_post(tx: Tx, incident_id: str) -> int | None:
    """Mark a thread message queued; its batch number, or None when one is queued already.

    The row is locked even then: the queued message's claim (claim_batch) waits for this
    transaction and takes the alerts it attached. Unlocked, the claim could run between
    this read and the commit and leave them untold until another batch came."""
    row = await tx.fetchone(
        "SELECT post_queued, batches FROM alert_incidents WHERE incident_id = ?" + for_update(tx),
        (incident_id,),
    )
    if row is None or row["post_queued"]:
        return None
    await tx.execute(
        "UPDATE alert_incidents SET post_queued = 1, batches = batches + 1 WHERE incident_id = ?",
        (incident_id,),
    )
    return int(row["batches"]) + 1


async def mark_diagnosed(tx: Tx, incident_id: str, now: datetime) -> bool:
    """True the first time (an incident is diagnosed on alerts once, and again when reopened)."""
    changed = await tx.execute(
        "UPDATE alert_incidents SET diagnosed_at = ?"
        " WHERE incident_id = ? AND diagnosed_at IS NULL",
        (now.timestamp(), incident_id),
    )
    return changed == 1


async def forget_diagnosed(tx: Tx, incident_id: str) -> None:
    await tx.execute(
        "UPDATE alert_incidents SET diagnosed_at = NULL WHERE incident_id = ?", (incident_id,)
    )


async def claim_batch(
    tx: Tx, incident_id: str, batch: int
) -> tuple[list[StoredAlert], list[StoredAlert]]:
    """Take every alert not yet told into `batch`; (fired, resolved) of that batch.

    A retry of the same batch takes what arrived since and tells the same alerts again."""
    await tx.execute(
        "UPDATE alert_incidents SET post_queued = 0 WHERE incident_id = ?", (incident_id,)
    )
    await tx.execute(
        "UPDATE alerts SET told_firing = ? WHERE incident_id = ? AND told_firing IS NULL",
        (batch, incident_id),
    )
    await tx.execute(
        "UPDATE alerts SET told_resolved = ? WHERE incident_id = ? AND status = 'resolved'"
        " AND told_resolved IS NULL",
        (batch, incident_id),
    )
    fired = await tx.fetchall(
        "SELECT * FROM alerts WHERE incident_id = ? AND told_firing = ? ORDER BY id",
        (incident_id, batch),
    )
    resolved = await tx.fetchall(
        "SELECT * FROM alerts WHERE incident_id = ? AND told_resolved = ? ORDER BY id",
        (incident_id, batch),
    )
    return [stored_alert(r) for r in fired], [stored_alert(r) for r in resolved]


async def batch_alerts(tx: Tx, incident_id: str, batch: int) -> list[StoredAlert]:
    """The alerts told firing in `batch` (what its Silence button silences)."""
    rows = await tx.fetchall(
        "SELECT * FROM alerts WHERE incident_id = ? AND told_firing = ? ORDER BY id",
        (incident_id, batch),
    )
    return [stored_alert(r) for r in rows]


async def batch_resolved(tx: Tx, incident_id: str, batch: int) -> list[StoredAlert]:
    """The alerts told resolved in `batch`."""
    rows = await tx.fetchall(
        "SELECT * FROM alerts WHERE incident_id = ? AND told_resolved = ? ORDER BY id",
        (incident_id, batch),
    )
    return [stored_alert(r) for r in rows]


async def set_message(tx: Tx, incident_id: str, batch: int, channel_id: str, ts: str) -> None:
    """Where the batch's message is (a retried post moved it: the last one posted)."""
    await tx.execute(
        "INSERT INTO alert_messages (incident_id, batch, channel_id, ts) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (incident_id, batch) DO UPDATE SET channel_id = excluded.channel_id,"
        " ts = excluded.ts",
        (incident_id, batch, channel_id, ts),
    )


async def message_of(tx: Tx, incident_id: str, batch: int) -> tuple[str, str] | None:
    """(channel, ts) of the batch's message; None when it was never posted (or before 0019)."""
    row = await tx.fetchone(
        "SELECT channel_id, ts FROM alert_messages WHERE incident_id = ? AND batch = ?",
        (incident_id, batch),
    )
    return None if row is None else (str(row["channel_id"]), str(row["ts"]))
