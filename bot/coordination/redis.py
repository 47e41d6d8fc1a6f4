"""Redis coordinator: claims and kept queues shared by every bot process.

Claims made in the same turn of the event loop (a burst of Slack requests, each claiming its
ID before its ack) go to Redis together, in one pipeline: one write and one answer for all of
them, not one connection and one wake-up each.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from bot import metrics
from bot.errors import CoordinatorUnavailable
from bot.redact import redact_text

# SET NX, or the holder's value: one atomic step (SET ... NX GET needs Redis 7).
_HOLD = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
return redis.call('GET', KEYS[1])
"""
# Delete only while it still holds this caller's value: an expired, re-taken key stays.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


# How often a listener asks Redis for a PONG on its pub/sub connection: a connection that
# died without a word (a Redis host gone, a NAT or proxy that dropped it) is found within
# this and the timeout, not never.
HEARTBEAT_SECONDS = 5.0


class RedisCoordinator:
    def __init__(
        self,
        url: str,
        *,
        prefix: str = "chatops:",
        timeout: float = 2.0,
        heartbeat: float = HEARTBEAT_SECONDS,
    ) -> None:
        self._redis = aioredis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True
        )
        # The listeners' own client, without redis-py's retries: they reconnected and
        # resubscribed silently, so a listener never knew it had missed what was said while
        # it was away. Every drop ends `signals()`; the caller listens again and catches up.
        self._listener = aioredis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            decode_responses=True,
            retry=Retry(NoBackoff(), 0),
        )
        self._timeout = timeout
        self._heartbeat = heartbeat
        self._prefix = prefix
        self._claims: list[tuple[str, int, asyncio.Future[bool]]] = []  # for the next pipeline
        self._sending: set[asyncio.Task[None]] = set()
        self._hold = self._redis.register_script(_HOLD)
        self._release = self._redis.register_script(_RELEASE)

    def _fail(self, exc: Exception) -> CoordinatorUnavailable:
        metrics.REDIS_ERRORS.labels("coordinator").inc()
        return CoordinatorUnavailable("Redis is unavailable: " + redact_text(str(exc)))

    async def claim(self, key: str, ttl: float) -> bool:
        loop = asyncio.get_running_loop()
        claimed: asyncio.Future[bool] = loop.create_future()
        self._claims.append((self._prefix + "claim:" + key, max(1, int(ttl * 1000)), claimed))
        if len(self._claims) == 1:
            # Sent next turn: the requests this turn woke up claim first and share the trip.
            loop.call_soon(self._send_claims)
        return await claimed

    def _send_claims(self) -> None:
        claims, self._claims = self._claims, []
        task = asyncio.ensure_future(self._claim_all(claims))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _claim_all(self, claims: list[tuple[str, int, asyncio.Future[bool]]]) -> None:
        """SET NX each key in one pipeline (not a transaction: each claim stands alone)."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, ttl_ms, _ in claims:
                    pipe.set(key, "1", nx=True, px=ttl_ms)
                results = await pipe.execute()
        except (RedisError, OSError) as exc:
            failure = self._fail(exc)
            for _, _, claimed in claims:
                if not claimed.done():
                    claimed.set_exception(failure)
            return
        for (_, _, claimed), result in zip(claims, results, strict=True):
            if not claimed.done():  # its request may have given up waiting
                claimed.set_result(bool(result))

    async def hold(self, key: str, value: str, ttl: float) -> str | None:
        try:
            holder = await self._hold(
                keys=[self._prefix + "hold:" + key], args=[value, max(1, int(ttl * 1000))]
            )
        except (RedisError, OSError) as exc:
            raise self._fail(exc) from exc
        return None if holder is None else str(holder)

    async def release(self, key: str, value: str) -> bool:
        try:
            return bool(await self._release(keys=[self._prefix + "hold:" + key], args=[value]))
        except (RedisError, OSError) as exc:
            raise self._fail(exc) from exc

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

    async def signal(self, channel: str, message: str) -> None:
        try:
            await self._redis.publish(self._prefix + "signal:" + channel, message)
        except (RedisError, OSError) as exc:
            raise self._fail(exc) from exc

    async def signals(self, channel: str) -> AsyncIterator[str]:
        """See the port. Ends with CoordinatorUnavailable when the connection drops or Redis
        leaves a PING unanswered `timeout` seconds (heartbeats every `heartbeat` seconds)."""
        loop = asyncio.get_running_loop()
        pubsub = self._listener.pubsub()
        try:
            await pubsub.subscribe(self._prefix + "signal:" + channel)
            heard = pinged = loop.time()  # Redis last answered; the last PING sent
            yield ""
            while True:
                # A bounded wait per read: the connection's socket timeout applies to reads.
                wait = min(1.0, self._heartbeat)
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
                now = loop.time()
                if message is not None:
                    heard = now
                    if message["type"] == "message":
                        yield str(message["data"])
                elif now - heard > self._heartbeat + self._timeout:
                    raise ConnectionError(
                        f"no answer to a PING on the pub/sub connection within {self._timeout:g} s"
                    )
                if now - pinged >= self._heartbeat:
                    await pubsub.ping()  # its PONG comes back as a message
                    pinged = now
        except (RedisError, OSError) as exc:
            raise self._fail(exc) from exc
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except RedisError as exc:
            raise self._fail(exc) from exc

    async def close(self) -> None:
        await self._listener.aclose()
        await self._redis.aclose()
