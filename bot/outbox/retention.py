"""The outbox's retention: delivered and failed effects deleted once old enough, in batches."""

from __future__ import annotations

from bot.store import Store

_PRUNE_BATCH = 1000


async def delete_old(store: Store, delivered_before: float, failed_before: float) -> int:
    """Delete effects delivered before `delivered_before` and effects that failed before
    `failed_before` (timestamps); never one still undone. Returns how many went."""
    deleted = 0
    while True:  # in batches, so no transaction holds the table for long
        async with store.transaction() as tx:
            batch = await tx.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
                " WHERE (delivered_at IS NOT NULL AND delivered_at < ?)"
                " OR (failed_at IS NOT NULL AND failed_at < ?)"
                f" LIMIT {_PRUNE_BATCH})",
                (delivered_before, failed_before),
            )
        deleted += batch
        if batch < _PRUNE_BATCH:
            return deleted
