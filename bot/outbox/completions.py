"""Delivered effects, marked done in groups: one statement for many effects instead of a
transaction each (per effect, the commit was most of what delivery cost).

A delivered effect waits here to be marked while its claim is safe: the dispatcher marks
every waiting effect at the end of each batch, before the next claim reads whose turn it is,
and sooner when a waiting effect's claim would run out before the next handler could time
out (a claim that ran out lets another process deliver the effect again). A stopped
dispatcher marks what waits before it goes. A store error leaves the effects waiting, to be
marked by the next flush (or, if their claims run out first, delivered again: at least once,
as when a single mark failed before).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from bot.clock import Clock
from bot.errors import StoreBusy, StoreError, StoreUnavailable
from bot.outbox.queue import Effect
from bot.store import Store

log = logging.getLogger(__name__)


class Completions:
    """The delivered effects of one dispatcher not yet marked done."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.statements = 0  # how many UPDATEs marked effects done (tests and bench read it)
        self._waiting: list[Effect] = []
        # What the waiting deliveries must store (outbox.write_with_mark): with their marks.
        self._writes: list[tuple[str, tuple[Any, ...]]] = []
        self._earliest = float("inf")  # the earliest claim among them (None counts as run out)
        self._writing = asyncio.Lock()

    def add(self, effect: Effect, writes: Sequence[tuple[str, tuple[Any, ...]]] = ()) -> None:
        """`effect` was delivered: mark it done with the next flush, and store `writes`
        (statements and parameters) in the same transaction."""
        self._waiting.append(effect)
        self._writes.extend(writes)
        until = effect.claimed_until
        self._earliest = min(self._earliest, float("-inf") if until is None else until)

    @property
    def writes_waiting(self) -> bool:
        """Whether a waiting delivery has something to store (flushed before its lane goes
        on: a later effect of the lane reads it)."""
        return bool(self._writes)

    def runs_out_before(self, when: float) -> bool:
        """Whether a waiting effect's claim runs out before `when` (a timestamp)."""
        return self._earliest <= when

    async def flush(self) -> None:
        """Mark every waiting effect done, in one statement."""
        async with self._writing:
            group, self._waiting = self._waiting, []
            writes, self._writes = self._writes, []
            earliest, self._earliest = self._earliest, float("inf")
            if not group:
                return
            ids = [effect.id for effect in group]
            try:
                try:
                    await self._mark(ids, writes)
                except StoreError as exc:
                    if not writes or isinstance(exc, StoreUnavailable | StoreBusy):
                        raise
                    # A write that can never succeed must not hold the marks back: their
                    # claims would run out, and the messages be posted again.
                    log.error("outbox: what deliveries posted could not be stored: %s", exc)
                    await self._mark(ids, [])
            except BaseException:
                self._waiting[:0] = group  # still delivered: the next flush marks them
                self._writes[:0] = writes
                self._earliest = min(self._earliest, earliest)
                raise
            self.statements += 1

    async def _mark(self, ids: list[int], writes: Sequence[tuple[str, tuple[Any, ...]]]) -> None:
        now = self.clock.now().timestamp()
        mark = (
            "UPDATE outbox SET delivered_at = ? WHERE delivered_at IS NULL"
            f" AND id IN ({', '.join('?' * len(ids))})"
        )
        if not writes:
            async with self.store.autocommit() as db:  # one UPDATE: no transaction
                await db.execute(mark, (now, *ids))
            return
        # One round trip on PostgreSQL: every statement goes with the COMMIT.
        async with self.store.transaction() as tx:
            for sql, params in writes:
                await tx.execute_nowait(sql, params)
            await tx.execute_nowait(mark, (now, *ids))
