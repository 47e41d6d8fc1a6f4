"""The Coordinator contract, in process and on Redis alike."""

from __future__ import annotations

import asyncio

import pytest

from bot.coordination import Coordinator
from bot.coordination.redis import RedisCoordinator
from bot.errors import CoordinatorUnavailable


async def test_claim_is_granted_once(coordinator: Coordinator) -> None:
    results = await asyncio.gather(*(coordinator.claim("req:abc", 60) for _ in range(20)))
    assert results.count(True) == 1
    assert await coordinator.claim("req:other", 60)


async def test_claim_expires(coordinator: Coordinator) -> None:
    assert await coordinator.claim("short", 0.05)
    assert not await coordinator.claim("short", 60)
    await asyncio.sleep(0.1)
    assert await coordinator.claim("short", 60)


async def test_kept_items_stay_in_order_until_forgotten(coordinator: Coordinator) -> None:
    assert await coordinator.kept("pins", 10) == []
    for item in ("a", "b", "c"):
        await coordinator.keep("pins", item)
    await coordinator.keep("other", "x")
    assert await coordinator.kept("pins", 2) == ["a", "b"]
    assert await coordinator.kept("pins", 10) == ["a", "b", "c"]  # reading takes nothing
    await coordinator.forget("pins", "b")
    await coordinator.forget("pins", "b")  # handled twice (two processes): harmless
    assert await coordinator.kept("pins", 10) == ["a", "c"]
    assert await coordinator.kept("other", 10) == ["x"]


async def test_redis_down_is_coordinator_unavailable() -> None:
    coordinator = RedisCoordinator("redis://127.0.0.1:1/0", timeout=0.5)
    try:
        with pytest.raises(CoordinatorUnavailable):
            await coordinator.claim("x", 1)
        with pytest.raises(CoordinatorUnavailable):
            await coordinator.ping()
        with pytest.raises(CoordinatorUnavailable):
            await coordinator.keep("pins", "a")
    finally:
        await coordinator.close()
