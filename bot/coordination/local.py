"""In-process coordinator: enough for one bot process (the embedded default)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator


class LocalCoordinator:
    def __init__(self, *, max_keys: int = 100_000) -> None:
        self._claims: dict[str, float] = {}
        # Kept only as long as the process lives: one process has nobody to share them with.
        self._queues: dict[str, list[str]] = {}
        # Held keys: (value, expiry). Few (one per run under way), freed by `release`.
        self._held: dict[str, tuple[str, float]] = {}
        self._max_keys = max_keys

    def _expire(self, now: float) -> None:
        # Oldest first (a dict keeps insertion order, and a claim is re-inserted at the end):
        # the expired ones at the front go at once, so a long-running process holds the last
        # TTL's keys, not `max_keys` of them (about 18 MB). The full sweep is the backstop for
        # keys stuck behind a longer TTL.
        stale = [key for key, _ in itertools.takewhile(lambda i: i[1] <= now, self._claims.items())]
        for key in stale:
            del self._claims[key]
        if len(self._claims) >= self._max_keys:
            self._claims = {k: exp for k, exp in self._claims.items() if exp > now}

    def held(self) -> int:
        """How many de-duplication keys it holds now (their memory is this process's)."""
        return len(self._claims)

    async def claim(self, key: str, ttl: float) -> bool:
        now = time.monotonic()
        self._expire(now)
        expires = self._claims.get(key)
        if expires is not None and expires > now:
            return False
        self._claims.pop(key, None)
        self._claims[key] = now + ttl
        return True

    async def hold(self, key: str, value: str, ttl: float) -> str | None:
        now = time.monotonic()
        self._held = {k: held for k, held in self._held.items() if held[1] > now}
        held = self._held.get(key)
        if held is not None:
            return held[0]
        self._held[key] = (value, now + ttl)
        return None

    async def release(self, key: str, value: str) -> bool:
        held = self._held.get(key)
        if held is None or held[0] != value or held[1] <= time.monotonic():
            return False
        del self._held[key]
        return True

    async def keep(self, queue: str, item: str) -> None:
        self._queues.setdefault(queue, []).append(item)

    async def kept(self, queue: str, count: int) -> list[str]:
        return list(self._queues.get(queue, [])[:count])

    async def forget(self, queue: str, item: str) -> None:
        items = self._queues.get(queue, [])
        if item in items:
            items.remove(item)

    async def signal(self, channel: str, message: str) -> None:
        return None  # one process: nobody else to tell

    async def signals(self, channel: str) -> AsyncIterator[str]:
        yield ""  # listening; nothing ever comes
        await asyncio.Event().wait()

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._claims.clear()
        self._held.clear()
