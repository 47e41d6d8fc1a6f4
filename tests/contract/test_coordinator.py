"""The Coordinator contract, in process and on Redis alike."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from bot.coordination import Coordinator, LocalCoordinator
from bot.coordination.redis import RedisCoordinator
from bot.errors import CoordinatorUnavailable
from tests.waiting import until


async def test_claim_is_granted_once(coordinator: Coordinator) -> None:
    results = await asyncio.gather(*(coordinator.claim("req:abc", 60) for _ in range(20)))
    assert results.count(True) == 1
    assert await coordinator.claim("req:other", 60)


async def test_claim_expires(coordinator: Coordinator) -> None:
    # 0.5 s, not 50 ms: the second claim must come within it, and a process descheduled on a
    # busy machine (or a loop held) for 50 ms let the key expire and the claim go through.
    assert await coordinator.claim("short", 0.5)
    assert not await coordinator.claim("short", 60)
    await until(lambda: coordinator.claim("short", 60), "the claim to expire", timeout=10)


async def test_the_local_coordinator_lets_expired_keys_go_as_it_claims() -> None:
    """It held every key until it had 100,000 of them (about 18 MB in a long-running process);
    now the expired ones go on the next claim, and a key claimed again moves to the back."""
    local = LocalCoordinator()
    for n in range(500):
        assert await local.claim(f"req:{n}", 0.05)
    assert await local.claim("req:again", 0.05)
    await asyncio.sleep(0.1)
    assert await local.claim("req:again", 60)  # expired: claimed again, now at the back
    assert await local.claim("req:new", 60)
    assert local.held() == 2
    assert not await local.claim("req:again", 60)


async def test_hold_is_granted_once_and_tells_the_others_who_holds_it(
    coordinator: Coordinator,
) -> None:
    results = await asyncio.gather(
        *(coordinator.hold("run:web", f"run-{n}", 60) for n in range(10))
    )
    assert results.count(None) == 1
    holder = f"run-{results.index(None)}"
    assert [r for r in results if r is not None] == [holder] * 9
    assert await coordinator.hold("run:api", "other", 60) is None  # another key, its own hold
    assert await coordinator.claim("run:web", 60)  # claims and holds do not share keys


async def test_release_frees_only_the_value_it_holds(coordinator: Coordinator) -> None:
    assert await coordinator.hold("run:web", "first", 60) is None
    assert not await coordinator.release("run:web", "second")  # not the holder: nothing freed
    assert await coordinator.hold("run:web", "second", 60) == "first"
    assert await coordinator.release("run:web", "first")
    assert not await coordinator.release("run:web", "first")  # freed already
    assert await coordinator.hold("run:web", "second", 60) is None


async def test_a_hold_expires_and_its_late_release_frees_nothing(coordinator: Coordinator) -> None:
    """A holder that outlived its TTL (a crashed or stuck replica) must not free the key the
    next run took meanwhile."""
    assert await coordinator.hold("run:web", "crashed", 0.05) is None
    await asyncio.sleep(0.1)
    assert await coordinator.hold("run:web", "next", 60) is None
    assert not await coordinator.release("run:web", "crashed")
    assert await coordinator.hold("run:web", "third", 60) == "next"


async def test_holds_are_shared_by_two_redis_coordinators(redis_url: str) -> None:
    """Two replicas, one Redis: the second sees the first's hold, and its release."""
    first, second = RedisCoordinator(redis_url), RedisCoordinator(redis_url)
    try:
        assert await first.hold("run:web", '{"actor": "U0ALICE"}', 60) is None
        assert await second.hold("run:web", "mine", 60) == '{"actor": "U0ALICE"}'
        assert await first.release("run:web", '{"actor": "U0ALICE"}')
        assert await second.hold("run:web", "mine", 60) is None
    finally:
        await first.close()
        await second.close()


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
        with pytest.raises(CoordinatorUnavailable):
            await coordinator.hold("run:web", "a", 1)
        with pytest.raises(CoordinatorUnavailable):
            await coordinator.release("run:web", "a")
    finally:
        await coordinator.close()


async def test_claims_made_together_go_to_redis_together(redis_url: str) -> None:
    """A burst of requests claims its IDs before acking: one pipeline on one connection, not a
    connection and a round trip each (they were 20 connections for 20 claims)."""
    name = "claims-together"
    coordinator = RedisCoordinator(f"{redis_url}?client_name={name}")
    observer = aioredis.from_url(redis_url)
    try:
        keys = [f"req:burst-{n}" for n in range(20)] + ["req:burst-0"]
        results = await asyncio.gather(*(coordinator.claim(key, 60) for key in keys))
        assert results == [True] * 20 + [False]  # the repeat, later in the same pipeline, lost
        clients = await observer.client_list()
        assert [c["name"] for c in clients].count(name) == 1
    finally:
        await observer.aclose()
        await coordinator.close()


async def test_redis_down_fails_every_claim_of_a_batch() -> None:
    coordinator = RedisCoordinator("redis://127.0.0.1:1/0", timeout=0.5)
    try:
        results = await asyncio.gather(
            *(coordinator.claim(f"k{n}", 1) for n in range(3)), return_exceptions=True
        )
        assert all(isinstance(result, CoordinatorUnavailable) for result in results)
    finally:
        await coordinator.close()


async def test_a_signal_reaches_every_process_listening(redis_url: str) -> None:
    """With Redis, a signal from one process reaches another that listens (pub/sub)."""
    sender, listener = RedisCoordinator(redis_url), RedisCoordinator(redis_url)
    try:
        heard = listener.signals("stale")
        assert await anext(heard) == ""  # listening now
        await sender.signal("stale", "withdrawn")
        assert await asyncio.wait_for(anext(heard), timeout=10) == "withdrawn"
        await heard.aclose()
    finally:
        await sender.close()
        await listener.close()


async def test_signals_in_process_only_say_they_listen() -> None:
    local = LocalCoordinator()
    heard = local.signals("stale")
    assert await anext(heard) == ""
    await local.signal("stale", "withdrawn")  # nobody else to tell: not an error
    waiting = asyncio.ensure_future(anext(heard))
    await asyncio.sleep(0)
    assert not waiting.done()
    waiting.cancel()


async def test_redis_down_fails_a_signal_and_a_listen() -> None:
    coordinator = RedisCoordinator("redis://127.0.0.1:1/0", timeout=0.5)
    try:
        with pytest.raises(CoordinatorUnavailable):
            await coordinator.signal("stale", "withdrawn")
        with pytest.raises(CoordinatorUnavailable):
            await anext(coordinator.signals("stale"))
    finally:
        await coordinator.close()
