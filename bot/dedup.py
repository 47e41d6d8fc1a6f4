"""Slack requests already handled: a retry or a redelivery changes nothing twice.

Each handled request leaves a row in `handled_requests`. Slack retries within minutes
(after about 1 s, 1 min and 5 min), so a row is needed for a short while only; the
`HandledRequestsPruner` deletes rows older than the retention window (24 h by default,
DEDUP_RETENTION_SECONDS) once an hour, so the table stays the size of one day's traffic.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from bot.background import BackgroundLoop
from bot.clock import Clock
from bot.errors import DuplicateRequest, StoreError
from bot.store import Store, Tx

log = logging.getLogger(__name__)

DEFAULT_RETENTION_SECONDS = 86_400.0
DEFAULT_PRUNE_INTERVAL_SECONDS = 3_600.0


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


async def claim(tx: Tx, request_id: str | None, at: datetime) -> None:
    """Record `request_id` inside the caller's transaction; DuplicateRequest (which rolls
    the transaction back) when it was handled before: a Slack retry changes nothing."""
    if not await mark_handled(tx, request_id, at):
        raise DuplicateRequest("This request was already handled.")


async def was_handled(store: Store, request_id: str, *, within: float = 5.0) -> bool | None:
    """Whether `request_id`'s claim committed (so the change it guarded stands); None when
    the store cannot say within `within` seconds. A failure that may have come after a
    COMMIT asks this before telling anyone that nothing was changed."""
    try:
        async with asyncio.timeout(within):
            async with store.transaction() as tx:
                row = await tx.fetchone(
                    "SELECT 1 AS found FROM handled_requests WHERE request_id = ?", (request_id,)
                )
    except (StoreError, TimeoutError) as exc:
        log.warning("could not tell whether request %s was handled: %s", request_id, exc)
        return None
    return row is not None


async def forget_handled_before(tx: Tx, cutoff: datetime, *, limit: int) -> int:
    """Delete at most `limit` requests handled before `cutoff`; return how many."""
    return await tx.execute(
        "DELETE FROM handled_requests WHERE request_id IN ("
        f" SELECT request_id FROM handled_requests WHERE handled_at < ? LIMIT {int(limit)})",
        (cutoff.timestamp(),),
    )


class HandledRequestsPruner:
    """Forgets handled requests older than `retention` seconds, every `interval` seconds.

    Deletes in batches, each in a short transaction of its own, so a large backlog never
    holds a lock for long. Several processes may prune at once: each row goes once.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        retention: float = DEFAULT_RETENTION_SECONDS,
        interval: float = DEFAULT_PRUNE_INTERVAL_SECONDS,
        batch_size: int = 5_000,
    ) -> None:
        self.store = store
        self.clock = clock
        self.retention = retention
        self.interval = interval
        self.batch_size = batch_size
        self._loop = BackgroundLoop("handled-requests-pruner", self._round, interval=interval)

    async def prune(self) -> int:
        """Delete every request handled longer than `retention` ago; return how many."""
        cutoff = self.clock.now() - timedelta(seconds=self.retention)
        total = 0
        while True:
            async with self.store.transaction() as tx:
                deleted = await forget_handled_before(tx, cutoff, limit=self.batch_size)
            total += deleted
            if deleted < self.batch_size:
                return total

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _round(self) -> None:
        deleted = await self.prune()
        if deleted:
            log.info("forgot %d handled requests older than %g s", deleted, self.retention)
