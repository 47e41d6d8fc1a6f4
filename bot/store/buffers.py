"""What a transaction collects to write in one go just before it commits.

Rows written one statement each cost a round trip each; a transaction that collects them
(audit entries, a batch of firings' timeline lines and outbox rows, escalation states) writes
each kind with one statement instead. The collection belongs to its transaction: kept by a
weak reference, so a transaction that ends without committing (an error, a rollback) takes
its collection with it.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from bot.store.base import Tx

T = TypeVar("T")


class TxBuffer(Generic[T]):
    """One collection per transaction, made by `factory` on first use and handed to `write`
    just before that transaction commits (`last`: after every other before-commit hook, for a
    write that takes a lock held to the commit). Without `write`, the collection is only the
    transaction's own memory of what it did, kept until it ends."""

    def __init__(
        self,
        factory: Callable[[], T],
        write: Callable[[Tx, T], Awaitable[None]] | None = None,
        *,
        last: bool = False,
    ) -> None:
        self._factory = factory
        self._write = write
        self._last = last
        self._held: weakref.WeakKeyDictionary[Tx, T] = weakref.WeakKeyDictionary()

    def open(self, tx: Tx) -> T:
        """`tx`'s collection, started (and its write set for the commit) if it has none."""
        held = self._held.get(tx)
        if held is None:
            held = self._held[tx] = self._factory()
            if self._write is not None:
                tx.before_commit(lambda: self._flush(tx), last=self._last)
        return held

    def get(self, tx: Tx) -> T | None:
        """`tx`'s collection, or None when `tx` collects nothing here (write at once)."""
        return self._held.get(tx)

    async def _flush(self, tx: Tx) -> None:
        held = self._held.pop(tx, None)
        if held is not None and self._write is not None:
            await self._write(tx, held)
