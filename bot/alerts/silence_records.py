"""SQL for the silences made from Slack (alert_silences, migration 0012), inside a caller's
transaction: what a click made, how long each runs by the record, and the alerts they hold."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.alerts.storage import StoredAlert, stored_alert
from bot.clock import utc_from_timestamp
from bot.store import Tx


async def add_silence(
    tx: Tx,
    silence_id: str,
    incident_id: str,
    batch: int,
    matchers: list[dict[str, Any]],
    actor: str,
    now: datetime,
    ends_at: datetime,
) -> None:
    await tx.execute(
        "INSERT INTO alert_silences (silence_id, incident_id, batch, matchers, created_by,"
        " created_at, ends_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (silence_id) DO NOTHING",
        (
            silence_id,
            incident_id,
            batch,
            json.dumps(matchers),
            actor,
            now.timestamp(),
            ends_at.timestamp(),
        ),
    )


@dataclass(frozen=True, slots=True)
class RecordedSilence:
    silence_id: str
    matchers: list[dict[str, Any]]
    created_at: datetime
    ends_at: datetime


async def silenced_batch(
    tx: Tx, incident_id: str, batch: int, now: datetime
) -> list[RecordedSilence]:
    """The silences made for a batch that by the record have not ended by `now` (a second
    click makes none of these again); once they ended, a click silences again."""
    rows = await tx.fetchall(
        "SELECT silence_id, matchers, created_at, ends_at FROM alert_silences"
        " WHERE incident_id = ? AND batch = ? AND ends_at > ? ORDER BY silence_id",
        (incident_id, batch, now.timestamp()),
    )
    return [
        RecordedSilence(
            str(row["silence_id"]),
            json.loads(row["matchers"]),
            utc_from_timestamp(float(row["created_at"])),
            utc_from_timestamp(float(row["ends_at"])),
        )
        for row in rows
    ]


async def batch_silence_ids(tx: Tx, incident_id: str, batch: int) -> frozenset[str]:
    """Every silence ever recorded for a batch, ended or not."""
    rows = await tx.fetchall(
        "SELECT silence_id FROM alert_silences WHERE incident_id = ? AND batch = ?",
        (incident_id, batch),
    )
    return frozenset(str(row["silence_id"]) for row in rows)


async def set_silence_end(tx: Tx, silence_id: str, ends_at: datetime) -> None:
    """Alertmanager's own end of a silence (ended by hand, or made longer there)."""
    await tx.execute(
        "UPDATE alert_silences SET ends_at = ? WHERE silence_id = ?",
        (ends_at.timestamp(), silence_id),
    )


@dataclass(frozen=True, slots=True)
class SilencedAlert:
    """An alert told in a batch, and a silence made from that batch's message."""

    alert: StoredAlert
    starts_at: Any  # as recorded: with the fingerprint, the occurrence
    batch: int
    silence_id: str
    matchers: list[dict[str, Any]]
    ends_at: datetime


async def silenced_by_record(
    tx: Tx, source: str, fingerprints: list[str], now: datetime, made_before: datetime
) -> list[SilencedAlert]:
    """Firing alerts of these fingerprints (`source`'s) with a silence of their batch that
    runs by the record at `now` and was made before `made_before`."""
    found: list[SilencedAlert] = []
    unique = sorted(set(fingerprints))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        rows = await tx.fetchall(
            "SELECT a.*, s.silence_id AS s_id, s.matchers AS s_matchers, s.ends_at AS s_ends,"
            " s.batch AS s_batch FROM alerts a JOIN alert_silences s"
            " ON s.incident_id = a.incident_id AND s.batch = a.told_firing"
            f" WHERE a.source = ? AND a.fingerprint IN ({marks}) AND a.status = 'firing'"
            " AND s.ends_at > ? AND s.created_at < ? ORDER BY a.id, s.silence_id",
            (source, *chunk, now.timestamp(), made_before.timestamp()),
        )
        found += [
            SilencedAlert(
                stored_alert(row),
                row["starts_at"],
                int(row["s_batch"]),
                str(row["s_id"]),
                json.loads(row["s_matchers"]),
                utc_from_timestamp(float(row["s_ends"])),
            )
            for row in rows
        ]
    return found
