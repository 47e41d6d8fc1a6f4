"""Redis coordinator: claims and kept queues shared by every bot process."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot import metrics
from bot.errors import CoordinatorUnavailable
from bot.redact import redact_text


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
