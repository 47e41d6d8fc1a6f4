"""The outbox's retention: delivered and failed effects deleted once old enough, in batches."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.store import Store

log = logging.getLogger(__name__)

KEEP_DELIVERED = timedelta(days=7)
KEEP_FAILED = timedelta(days=30)
PRUNE_INTERVAL = timedelta(hours=1)
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


class Retention:
    """A dispatcher's pruning: old delivered and failed effects deleted once per `interval`."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        keep_delivered: timedelta = KEEP_DELIVERED,
        keep_failed: timedelta = KEEP_FAILED,
        interval: timedelta = PRUNE_INTERVAL,
    ) -> None:
        self.store = store
        self.clock = clock
        self.keep_delivered = keep_delivered
        self.keep_failed = keep_failed
        self.interval = interval
        self._next_prune: datetime | None = None
        self.runs = 0  # how many times prune() has run (tests wait on it)

    async def prune(self) -> int:
        """Delete effects delivered more than `keep_delivered` ago and effects that failed
        more than `keep_failed` ago; never one still undone. Returns how many went."""
        now = self.clock.now()
        deleted = await delete_old(
            self.store,
            (now - self.keep_delivered).timestamp(),
            (now - self.keep_failed).timestamp(),
        )
        self.runs += 1
        if deleted:
            log.info("outbox: pruned %d delivered or failed effects", deleted)
        return deleted

    async def prune_if_due(self) -> None:
        """Prune if `interval` has passed since the last time (at once the first time)."""
        now = self.clock.now()
        if self._next_prune is not None and now < self._next_prune:
            return
        self._next_prune = now + self.interval
        await self.prune()
