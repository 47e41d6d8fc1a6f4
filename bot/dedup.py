"""Slack requests already handled: a retry or a redelivery changes nothing twice."""

from __future__ import annotations

from datetime import datetime

from bot.store import Tx


async def mark_handled(tx: Tx, request_id: str | None, at: datetime) -> bool:
    """Record `request_id` inside the caller's transaction; False when it was seen before.

    Requests without an ID (the console, scheduled work) are never duplicates.
    """
    if not request_id:
        return True
    changed = await tx.execute(
        "INSERT INTO handled_requests (request_id, handled_at) VALUES (?, ?)"
        " ON CONFLICT (request_id) DO NOTHING",
        (request_id, at.timestamp()),
    )
    return changed == 1
