"""Marking delivered effects done in groups: one statement for every effect whose handler
finished while the previous statement ran (a group commit), instead of one transaction each.

The first delivery to finish writes its own id; those finishing meanwhile queue theirs and
wait, and the writer then writes them all in one statement, until nothing is queued. Each
caller returns once its own effect is marked, so the next claim never sees a delivered effect
as undone, and a store error reaches every caller whose effect it left unmarked (that effect
is delivered again once its claim runs out: at least once, as before).
"""

from __future__ import annotations

import asyncio

from bot.clock import Clock
from bot.store import Store


class Completions:
    """The delivered effects of one dispatcher, marked done in groups."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.statements = 0  # how many UPDATEs marked effects done (tests and bench read it)
        self._queued: list[tuple[int, asyncio.Future[None]]] = []
        self._writing = False

    async def delivered(self, effect_id: int) -> None:
        """Return once `effect_id` is marked delivered; raise what the store raised."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((effect_id, waiter))
        if not self._writing:
            await self._write_queued()
        await waiter

    async def _write_queued(self) -> None:
        self._writing = True
        try:
            await asyncio.sleep(0)  # the deliveries finishing in this same turn join the first
            while self._queued:
                group, self._queued = self._queued, []
                try:
                    await self._mark([effect_id for effect_id, _ in group])
                except BaseException as exc:
                    # Nothing queued is marked: each waiter hears why (or is cancelled with us).
                    for _, waiter in group + self._queued:
                        if isinstance(exc, asyncio.CancelledError):
                            waiter.cancel()
                        else:
                            waiter.set_exception(exc)
                    self._queued = []
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    return
                for _, waiter in group:
                    waiter.set_result(None)
        finally:
            self._writing = False

    async def _mark(self, ids: list[int]) -> None:
        now = self.clock.now().timestamp()
        async with self.store.transaction() as tx:
            await tx.execute(
                f"UPDATE outbox SET delivered_at = ? WHERE id IN ({', '.join('?' * len(ids))})",
                (now, *ids),
            )
        self.statements += 1
