"""A customer Redis named by the catalog: one client with socket timeouts.

redis-py is imported on first use, not with this module: about 8 MB that a bot without Redis
never needs until a diagnosis reaches a catalogued Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from bot.catalog import RedisTarget
from bot.targets.errors import (
    TargetDenied,
    TargetError,
    TargetMisconfigured,
    TargetTimeout,
    TargetUnavailable,
    from_environment,
)

if TYPE_CHECKING:
    import redis.asyncio as aioredis

SYSTEM = "redis"


def url_for(target: RedisTarget) -> str:
    """The URL from the environment variable the catalog names (never from the catalog)."""
    return from_environment(SYSTEM, target.url_env)


def translate(exc: BaseException) -> TargetError:
    """redis-py's errors as TargetErrors (the only place that knows them)."""
    from redis import exceptions as redis_errors

    if isinstance(exc, TargetError):
        return exc
    if isinstance(exc, redis_errors.TimeoutError | TimeoutError):
        return TargetTimeout(SYSTEM, "no answer in time")
    if isinstance(exc, redis_errors.AuthenticationError | redis_errors.NoPermissionError):
        return TargetDenied(SYSTEM, str(exc) or "authentication refused")
    return TargetUnavailable(SYSTEM, str(exc) or type(exc).__name__)


def _errors() -> tuple[type[BaseException], ...]:
    from redis import exceptions as redis_errors

    return (redis_errors.RedisError, OSError)


class RedisSession:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    async def ping(self) -> bool:
        try:
            return bool(await self._client.ping())
        except _errors() as exc:
            raise translate(exc) from None

    async def info(self, section: str | None = None) -> dict[str, Any]:
        try:
            return await self._client.info(section) if section else await self._client.info()
        except _errors() as exc:
            raise translate(exc) from None

    async def config_get(self, name: str) -> dict[str, str]:
        try:
            answer = await self._client.config_get(name)
            return {str(key): str(value) for key, value in answer.items()}
        except _errors() as exc:
            raise translate(exc) from None

    async def config_set(self, name: str, value: str) -> None:
        try:
            await self._client.config_set(name, value)
        except _errors() as exc:
            raise translate(exc) from None


class RedisClient:
    """Sessions on the catalogued Redis, every call bounded by the entry's timeout."""

    def __init__(self, target: RedisTarget) -> None:
        self.target = target

    @asynccontextmanager
    async def session(self) -> AsyncIterator[RedisSession]:
        import redis.asyncio as aioredis

        timeout = self.target.timeout.seconds
        try:
            client = aioredis.from_url(
                url_for(self.target),
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                decode_responses=True,
                retry_on_timeout=False,
                client_name="chatops-bot",
            )
        except ValueError:
            # redis-py's own words may quote the URL, password and all: name the variable.
            raise TargetMisconfigured(
                SYSTEM,
                f"environment variable {self.target.url_env} does not hold a valid Redis URL"
                " (redis://[:password@]host[:port][/db], rediss:// or unix://)",
            ) from None
        try:
            yield RedisSession(client)
        finally:
            await client.aclose()
