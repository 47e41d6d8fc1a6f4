"""One action, written twice in the caller's transaction: a timeline line for people, an
audit entry for proof. Every service that records an action on an incident comes here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot import audit, refs
from bot.audit import AuditRecord
from bot.incidents import storage
from bot.models import TimelineEvent
from bot.store import Tx
from bot.store.buffers import TxBuffer


async def record(
    tx: Tx,
    at: datetime,
    incident_id: str,
    *,
    actor: str,
    kind: str,
    text: str | refs.Rich,
    action: str,
    args: dict[str, Any],
    outcome: str = "ok",
    data: dict[str, Any] | None = None,
    source: str | None = None,
    request_id: str | None = None,
    said: str = "",
) -> None:
    """Add the timeline event and the audit entry for one action on `incident_id`.

    `said` is the end of `text` that a person wrote (see TimelineEvent.said). Rich `text`
    (bot.refs) is kept as parts, its plain form as the row's text.
    """
    # Text still written with markup (the callers named in tests/unit/test_mentions.py) is
    # read into parts here, so every surface renders it alike.
    parts = refs.legacy(text, said) if isinstance(text, str) else text
    event = TimelineEvent(
        incident_id=incident_id,
        at=at,
        actor=actor,
        kind=kind,
        text=refs.plain(parts),
        data=data or {},
        source=source,
        said=said,
        parts=parts,
    )
    _lines.open(tx).setdefault(incident_id, []).append(event)
    buffered = _timeline.get(tx)
    if buffered is not None:
        buffered.append(event)
    else:
        await storage.add_timeline(tx, event)
    await audit.append(
        tx,
        at,
        AuditRecord(
            actor=actor,
            action=action,
            target=incident_id,
            outcome=outcome,
            args=args,
            incident_id=incident_id,
            request_id=request_id,
        ),
    )


# Timeline lines recorded in a transaction that buffers them (a batch of reminder firings).
# (Audit entries are always buffered: bot.audit.)
_timeline: TxBuffer[list[TimelineEvent]] = TxBuffer(list, storage.add_timelines)


def buffer(tx: Tx) -> None:
    """Make `tx` write the timeline lines recorded in it with one multi-row INSERT before it
    commits, in the order recorded; a read of the timeline in `tx` does not see them before."""
    _timeline.open(tx)


# The lines each transaction recorded, by incident: all a new incident's timeline, so its
# search document is written without reading them back.
_lines: TxBuffer[dict[str, list[TimelineEvent]]] = TxBuffer(dict)


def recorded(tx: Tx, incident_id: str) -> list[TimelineEvent]:
    """The timeline lines recorded for `incident_id` in `tx` so far, in order."""
    return list((_lines.get(tx) or {}).get(incident_id, []))
