"""One run per diagnosis across replicas: two bot instances behind a load balancer share one
PostgreSQL and one real Redis; Bob's `/diagnose web` on the second, while Alice's run of it
waits on the first, is told who runs it and starts nothing. The run ended frees the service
at once (not after its hold's TTL); with Redis down a diagnosis still runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import parse_url

from bot.clock import SystemClock
from bot.coordination.redis import RedisCoordinator
from bot.diagnostics.findings import Grade
from bot.diagnostics.runs import DiagnosisRunning
from bot.diagnostics.service import HOLD_MARGIN, DiagnosticsService
from bot.models import SYSTEM, Actor
from bot.permissions import Permissions, StaticDirectory
from bot.policy import Policy
from bot.store import create_store, migrate
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import policy_with
from tests.e2e.slow_endpoint import SlowEndpoint
from tests.faulty_tcp import FaultyTcp
from tests.harness import BotHarness
from tests.servers import RedisServer
from tests.waiting import until

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

HOLD = "chatops:hold:diagnosis:web:"  # the coordinator's key for `web`, every check


def _policy(endpoint: SlowEndpoint) -> Policy:
    return policy_with(
        services={"web": {"http": [{"url": endpoint.url, "timeout": 30}]}},
        roles={"responders": ["U0ALICE", "U0BOB"]},
    )


async def _reply(harness: BotHarness, others: list[BotHarness]) -> dict[str, object]:
    """The next answer on the Slack double the replicas share (each counts its own)."""
    [answer] = await harness.replies()
    for other in others:
        other.responses_seen = harness.responses_seen
    return answer


def _summaries(harness: BotHarness, channel: str) -> list[str]:
    return [
        str(c.params.get("text", ""))
        for c in harness.double.calls_to("chat.postMessage")
        if c.ok
        and c.params.get("channel") == channel
        and str(c.params.get("text", "")).startswith("Diagnosis of web:")
        and not c.params.get("thread_ts")
    ]


async def test_a_diagnose_on_another_replica_is_told_it_runs_and_starts_nothing(
    make_harness: HarnessFactory, slow_endpoint: SlowEndpoint, redis_url: str
) -> None:
    first = await make_harness("postgres", policy=_policy(slow_endpoint), redis_url=redis_url)
    second = await make_harness(
        "postgres", policy=_policy(slow_endpoint), redis_url=redis_url, double=first.double
    )
    both = [first, second]
    observer = aioredis.from_url(redis_url)
    try:
        await first.command("web", command="/diagnose", user_id="U0ALICE", channel_id="C0OPS")
        started = await _reply(first, both)
        assert str(started["text"]).startswith("Diagnosing `web`")
        await until(lambda: len(slow_endpoint.hits) == 1, "Alice's run to reach the endpoint")
        # Held for longer than the run's own limit (its slowest check, 30 s and a little), and
        # a minute more at most: a replica that crashed mid-run frees the service by itself.
        limit = max(c.timeout for c in first.bot.services.diagnostics.plan("web"))
        assert limit >= 30
        assert limit * 1000 < await observer.pttl(HOLD) <= (limit + HOLD_MARGIN) * 1000

        # Bob asks the other replica while Alice's run still waits on the endpoint.
        await second.command("WEB", command="/diagnose", user_id="U0BOB", channel_id="C0OTHER")
        told = str((await _reply(second, both))["text"])
        assert "Diagnosing" not in told
        assert "A diagnosis of `web` is already running (started by <@U0ALICE>, since" in told
        assert "its result will be posted in <#C0OPS>" in told
        assert "No second run was started" in told

        slow_endpoint.gate.set()
        await until(lambda: len(_summaries(first, "C0OPS")) == 1, "Alice's summary")
        assert slow_endpoint.hits == ["/health"]  # one run for two askers on two replicas
        assert _summaries(first, "C0OTHER") == []

        # The run ended: its hold is released at once, not after its TTL.
        async def released() -> bool:
            return not await observer.exists(HOLD)

        await until(released, "Alice's run to release its hold")
        await second.command("web", command="/diagnose", user_id="U0BOB", channel_id="C0OTHER")
        again = str((await _reply(second, both))["text"])
        assert again.startswith("Diagnosing `web`")
        await until(lambda: len(_summaries(first, "C0OTHER")) == 1, "Bob's own summary")
    finally:
        await observer.aclose()


async def test_with_redis_down_a_diagnosis_runs_all_the_same(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The shared hold cannot be taken: the run goes ahead (per process), never refused; the
    log says so once a run (not again for the release of a hold perhaps never taken)."""
    policy = policy_with(services={"web": {"http": [{"url": "http://127.0.0.1:1/health"}]}})
    store = create_store(f"sqlite:///{tmp_path}/diagnose.db")
    coordinator = RedisCoordinator("redis://127.0.0.1:1/0", timeout=0.5)
    await store.open()
    try:
        await migrate(store)
        service = DiagnosticsService(
            policy=policy,
            store=store,
            clock=SystemClock(),
            permissions=Permissions(policy, StaticDirectory()),
            coordinator=coordinator,
        )
        for _ in range(2):  # and nothing is left held in this process either
            diagnosis = await service.diagnose("web", Actor("U0ALICE"))
            assert diagnosis.report.grade is Grade.CRIT  # the endpoint is down: it ran
        assert service.running("web") is None
        warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len([w for w in warned if "runs unshared with other replicas" in w]) == 2
        assert not [w for w in warned if "hold not released" in w]
    finally:
        await coordinator.close()
        await store.close()


@pytest.fixture
async def replicas(
    tmp_path: Path, slow_endpoint: SlowEndpoint, redis_url: str
) -> AsyncIterator[list[DiagnosticsService]]:
    """Two diagnostics services, each with its own store and Redis connection: two replicas'
    worth of what a diagnosis shares through Redis."""
    policy = _policy(slow_endpoint)
    coordinators = [RedisCoordinator(redis_url), RedisCoordinator(redis_url)]
    stores = [create_store(f"sqlite:///{tmp_path}/replica-{n}.db") for n in range(2)]
    try:
        services = []
        for store, coordinator in zip(stores, coordinators, strict=True):
            await store.open()
            await migrate(store)
            services.append(
                DiagnosticsService(
                    policy=policy,
                    store=store,
                    clock=SystemClock(),
                    permissions=Permissions(policy, StaticDirectory()),
                    coordinator=coordinator,
                )
            )
        yield services
    finally:
        slow_endpoint.gate.set()
        for coordinator in coordinators:
            await coordinator.close()
        for store in stores:
            await store.close()


async def test_the_bots_own_run_goes_ahead_while_another_replica_holds_the_service(
    replicas: list[DiagnosticsService], slow_endpoint: SlowEndpoint, redis_url: str
) -> None:
    """An alert's diagnosis belongs to its incident's timeline: another replica's run of the
    service does not refuse it (a person asking is refused), nor take the hold over."""
    first, second = replicas
    observer = aioredis.from_url(redis_url)
    try:
        alices = asyncio.ensure_future(first.diagnose("web", Actor("U0ALICE")))
        await until(lambda: len(slow_endpoint.hits) == 1, "Alice's run to reach the endpoint")
        held = await observer.get(HOLD)
        with pytest.raises(DiagnosisRunning) as refused:
            await second.diagnose("web", Actor("U0BOB"))
        assert refused.value.running.actor == "U0ALICE"

        bots = asyncio.ensure_future(second.diagnose("web", SYSTEM))
        await until(lambda: len(slow_endpoint.hits) == 2, "the bot's run to reach the endpoint")
        assert await observer.get(HOLD) == held  # still Alice's run that others are told of
        slow_endpoint.gate.set()
        assert (await bots).report.service == "web"
        await alices
        assert not await observer.exists(HOLD)
    finally:
        await observer.aclose()


async def test_a_run_cut_short_frees_the_service_on_every_replica(
    replicas: list[DiagnosticsService], slow_endpoint: SlowEndpoint
) -> None:
    """As the alert path's timeout cuts its run: cancelled mid-check, its hold goes with it,
    so the other replica runs the next request (not after the hold's TTL)."""
    first, second = replicas
    run = asyncio.ensure_future(first.diagnose("web", Actor("U0ALICE")))
    await until(lambda: len(slow_endpoint.hits) == 1, "the run to reach the endpoint")
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    slow_endpoint.gate.set()
    diagnosis = await second.diagnose("web", Actor("U0BOB"))
    assert diagnosis.report.service == "web" and len(slow_endpoint.hits) == 2


async def _replica_behind(
    proxy: FaultyTcp, redis_url: str, policy: Policy, tmp_path: Path, timeout: float
) -> tuple[DiagnosticsService, RedisCoordinator]:
    """A replica whose Redis is reached through `proxy` (its own store, the shared Redis)."""
    db = parse_url(redis_url)["db"]
    coordinator = RedisCoordinator(f"redis://127.0.0.1:{proxy.port}/{db}", timeout=timeout)
    store = create_store(f"sqlite:///{tmp_path}/behind-proxy.db")
    await store.open()
    await migrate(store)
    service = DiagnosticsService(
        policy=policy,
        store=store,
        clock=SystemClock(),
        permissions=Permissions(policy, StaticDirectory()),
        coordinator=coordinator,
    )
    return service, coordinator


async def _scripts_loaded(redis_url: str) -> None:
    """The hold's script in Redis's cache: its first EVALSHA would be NOSCRIPT, which claims
    nothing (and the client then sends it again in full)."""
    warm = RedisCoordinator(redis_url)
    try:
        assert await warm.hold("warm-up", "x", 1) is None
        assert await warm.release("warm-up", "x")
    finally:
        await warm.close()


async def test_a_run_cancelled_while_its_hold_is_claimed_frees_the_service(
    replicas: list[DiagnosticsService],
    slow_endpoint: SlowEndpoint,
    redis_url: str,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    """Cut short (the alert path's timeout) after Redis took the claim but before its answer
    came back: the hold stayed until its TTL (~70 s), and the next /diagnose of the service,
    on any replica, was refused as "already running" while nothing ran."""
    await _scripts_loaded(redis_url)
    slow_endpoint.gate.set()
    observer = aioredis.from_url(redis_url)
    assert redis_server.port is not None
    with FaultyTcp(redis_server.port, after=b"hold:diagnosis", fault="mute") as proxy:
        first, coordinator = await _replica_behind(
            proxy, redis_url, _policy(slow_endpoint), tmp_path, timeout=30
        )
        try:
            run = asyncio.ensure_future(first.diagnose("web", Actor("U0ALICE")))

            async def claimed() -> bool:
                return bool(proxy.tripped and await observer.exists(HOLD))

            await until(claimed, "Redis to take the claim whose answer never comes")
            run.cancel()
            with pytest.raises(asyncio.CancelledError):
                await run
            assert not await observer.exists(HOLD)  # released before the cancel went on
            assert first.running("web") is None
            diagnosis = await replicas[1].diagnose("web", Actor("U0BOB"))
            assert diagnosis.report.service == "web"
            assert slow_endpoint.hits == ["/health"]  # the cancelled run checked nothing
        finally:
            await coordinator.close()
            await first.store.close()
            await observer.aclose()


async def test_a_claim_whose_answer_timed_out_is_released_when_the_run_ends(
    replicas: list[DiagnosticsService],
    slow_endpoint: SlowEndpoint,
    redis_url: str,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    """Redis took the claim but its answer was lost (the socket timeout): the run goes ahead
    unshared, and its hold, perhaps taken, is freed when it ends, not at its TTL."""
    await _scripts_loaded(redis_url)
    slow_endpoint.gate.set()
    observer = aioredis.from_url(redis_url)
    assert redis_server.port is not None
    with FaultyTcp(redis_server.port, after=b"hold:diagnosis", fault="mute") as proxy:
        first, coordinator = await _replica_behind(
            proxy, redis_url, _policy(slow_endpoint), tmp_path, timeout=0.5
        )
        try:
            diagnosis = await first.diagnose("web", Actor("U0ALICE"))
            assert diagnosis.report.grade is Grade.OK and proxy.tripped
            assert not await observer.exists(HOLD)
            assert (await replicas[1].diagnose("web", Actor("U0BOB"))).report.service == "web"
        finally:
            await coordinator.close()
            await first.store.close()
            await observer.aclose()
