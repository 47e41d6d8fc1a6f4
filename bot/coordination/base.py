"""The Coordinator port: de-duplication, locks and atomic claims between workers.

Contract (tests/contract runs the same suite against each adapter):

- `claim(key, ttl)` returns True for exactly one caller while the key lives (`ttl` seconds),
  False for every other caller, in this process or (with Redis) any other.
- `release(key)` forgets a claim so the work may be claimed again (used when it failed).
- `lock(name, ttl)` is an async context manager held by one holder at a time; it waits up
  to `wait` seconds and raises CoordinatorUnavailable if it cannot get the lock. A holder that
  dies loses the lock after `ttl`.
- `keep(queue, item)` appends `item` to a named queue that outlives the request (with Redis,
  the process too, and every process sees it); `kept(queue, count)` reads the oldest items
  without taking them; `forget(queue, item)` removes one copy once it is handled. Two
  processes may read the same item: handling it must be idempotent.
- Every failure of the backend is raised as CoordinatorUnavailable.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol


class Coordinator(Protocol):
    async def claim(self, key: str, ttl: float) -> bool:
        """Atomically claim `key` for `ttl` seconds; True when this caller got it."""
        ...

    async def release(self, key: str) -> None:
        """Drop a claim so the key can be claimed again."""
        ...

    def lock(
        self, name: str, *, ttl: float = 30.0, wait: float = 10.0
    ) -> AbstractAsyncContextManager[None]:
        """Hold a named lock for the duration of the block."""
        ...

    async def keep(self, queue: str, item: str) -> None:
        """Append `item` to `queue`, for work to be done once a dependency is back."""
        ...

    async def kept(self, queue: str, count: int) -> list[str]:
        """The `count` oldest items of `queue`, left in place."""
        ...

    async def forget(self, queue: str, item: str) -> None:
        """Remove one copy of `item` from `queue` (it has been handled)."""
        ...

    async def ping(self) -> None:
        """Raise CoordinatorUnavailable unless the backend answers."""
        ...

    async def close(self) -> None: ...
