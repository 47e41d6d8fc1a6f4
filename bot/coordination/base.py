"""The Coordinator port: de-duplication (atomic claims) and kept queues between workers.

Contract (tests/contract runs the same suite against each adapter):

- `claim(key, ttl)` returns True for exactly one caller while the key lives (`ttl` seconds),
  False for every other caller, in this process or (with Redis) any other.
- `hold(key, value, ttl)` is a claim that says who holds it: it stores `value` for `ttl`
  seconds and returns None for the one caller that got it, and the holder's value to every
  other caller while the key lives. `release(key, value)` frees it only while it still holds
  `value` (compare-and-delete): a holder whose key expired and was taken again frees nothing.
- `keep(queue, item)` appends `item` to a named queue that outlives the request (with Redis,
  the process too, and every process sees it); `kept(queue, count)` reads the oldest items
  without taking them; `forget(queue, item)` removes one copy once it is handled. Two
  processes may read the same item: handling it must be idempotent.
- `signal(channel, message)` tells every process listening on `channel` now (with Redis,
  pub/sub: a process not listening at that moment never hears it, so a signal only hastens
  what the receiver would learn anyway); `signals(channel)` listens, yielding "" once it is
  listening, then each message. In process there is nobody else to tell: it yields "" only.
- Every failure of the backend is raised as CoordinatorUnavailable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol


class Coordinator(Protocol):
    async def claim(self, key: str, ttl: float) -> bool:
        """Atomically claim `key` for `ttl` seconds; True when this caller got it."""
        ...

    async def hold(self, key: str, value: str, ttl: float) -> str | None:
        """Atomically hold `key` with `value` for `ttl` seconds: None when this caller got it,
        otherwise the value of the caller holding it."""
        ...

    async def release(self, key: str, value: str) -> bool:
        """Free `key` if it still holds `value`; True when it did."""
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

    async def signal(self, channel: str, message: str) -> None:
        """Tell every process listening on `channel` now; nothing is kept for later."""
        ...

    def signals(self, channel: str) -> AsyncIterator[str]:
        """Listen on `channel`: "" once listening, then each message, until closed."""
        ...

    async def ping(self) -> None:
        """Raise CoordinatorUnavailable unless the backend answers."""
        ...

    async def close(self) -> None: ...
