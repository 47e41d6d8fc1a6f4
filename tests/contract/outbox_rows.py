"""Effects queued and read back by the outbox's contract tests (test_outbox, test_outbox_runs)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot import outbox
from bot.store import Store, Tx

NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


async def queued(store: Store, kind: str, payload: dict[str, Any], lane: str | None) -> int:
    """Queue one effect at NOW in a transaction of its own; its id."""
    async with store.transaction() as tx:
        await outbox.enqueue(tx, NOW, kind, payload, lane=lane)
        return await last_id(tx)


async def last_id(tx: Tx) -> int:
    """The id of the effect this transaction queued last (enqueue does not wait for it)."""
    row = await tx.fetchone("SELECT MAX(id) AS id FROM outbox")
    assert row is not None
    return int(row["id"])


async def outbox_row(store: Store, effect_id: int) -> dict[str, Any]:
    async with store.transaction() as tx:
        row = await tx.fetchone("SELECT * FROM outbox WHERE id = ?", (effect_id,))
    assert row is not None
    return row
