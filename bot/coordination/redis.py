"""Redis coordinator: claims and locks shared by every bot process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot import metrics
from bot.errors import CoordinatorUnavailable
from bot.redact import redact_text

# Delete the lock only if we still hold it (a holder past its ttl must not free another's lock).
_UNLOCK = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class RedisCoordinator:
    def __init__(self, url: str, *, prefix: str = "chatops:", timeout: float = 2.0) -> None:
        self._redis = aioredis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True
        )
        self._prefix = prefix

    def _fail(self, exc: Exception) -> CoordinatorUnavailable:
        metrics.REDIS_ERRORS.labels("coordinator").inc()
        return CoordinatorUnavailable("Redis is unavailable: " + redact_text(str(exc)))

    async def claim(self, key: str, ttl: float) -> bool:
        try:
            done = await self._redis.set(
                self._prefix + "claim:" + key, "1", nx=True, px=max(1, int(ttl * 1000))
            )
        except RedisError as exc:
            raise self._fail(exc) from exc
        return bool(done)

    async def release(self, key: str) -> None:
        try:
            await self._redis.delete(self._prefix + "claim:" + key)
        except RedisError as exc:
            raise self._fail(exc) from exc

    @asynccontextmanager
    async def lock(
        self, name: str, *, ttl: float = 30.0, wait: float = 10.0
    ) -> AsyncIterator[None]:
        key, token = self._prefix + "lock:" + name, uuid.uuid4().hex
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        try:
            while not await self._redis.set(key, token, nx=True, px=int(ttl * 1000)):
                if loop.time() >= deadline:
                    raise CoordinatorUnavailable(f"lock {name!r} not acquired within {wait} s")
                await asyncio.sleep(0.02)
        except RedisError as exc:
            raise self._fail(exc) from exc
        try:
            yield
        finally:
            try:
                await self._redis.eval(_UNLOCK, 1, key, token)
            except RedisError:
                pass  # the lock expires by itself after ttl

    async def keep(self, queue: str, item: str) -> None:
        try:
            await self._redis.rpush(self._prefix + "queue:" + queue, item)
        except RedisError as exc:
            raise self._fail(exc) from exc

    async def kept(self, queue: str, count: int) -> list[str]:
        try:
            kept = await self._redis.lrange(self._prefix + "queue:" + queue, 0, count - 1)
            return [str(value) for value in kept]  # decode_responses: str already
        except RedisError as exc:
            raise self._fail(exc) from exc

    async def forget(self, queue: str, item: str) -> None:
        # By value, not LPOP: another process may have handled and removed the head already.
        try:
            await self._redis.lrem(self._prefix + "queue:" + queue, 1, item)
        except RedisError as exc:
            raise self._fail(exc) from exc

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except RedisError as exc:
            raise self._fail(exc) from exc

    async def close(self) -> None:
        await self._redis.aclose()
