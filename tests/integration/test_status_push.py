"""The status page's push listener (bot.status.push) when Redis is down, restarts, or leaves
its connection silent: real Redis servers, stopped and started."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from bot.clock import SystemClock
from bot.coordination.redis import RedisCoordinator
from bot.status import storage
from bot.status.page import StatusPage
from bot.status.push import CHANNEL, StalePush
from bot.store import Store, create_store
from tests.servers import RedisServer
from tests.silent_tcp import SilentTcp
from tests.waiting import until

pytestmark = [pytest.mark.redis]


async def test_a_redis_outage_is_logged_once_not_once_a_retry(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The listener retried every second and warned at each: a night's log of one line a
    second per replica for one Redis outage. It warns once and backs off."""
    store = create_store(f"sqlite:///{tmp_path / 'bot.db'}")
    page = StatusPage(store=store, clock=SystemClock(), components=[])
    coordinator = RedisCoordinator("redis://127.0.0.1:1/0", timeout=0.5)
    push = StalePush(coordinator, page, retry=0.001)
    caplog.set_level(logging.WARNING, logger="bot.status.push")
    push.start()
    try:
        await until(lambda: push.failures >= 5, "five failed attempts to listen")
    finally:
        await push.stop()
        await coordinator.close()
    warnings = [r for r in caplog.records if "not listening for withdrawals" in r.getMessage()]
    assert len(warnings) == 1


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    """A Redis of this test's own: it is killed and restarted."""
    with RedisServer() as server:
        yield server


@dataclass
class Replicas:
    """This replica (its page, listening through `listener`) and another one (`other`)
    that changes the page and signals it."""

    store: Store
    page: StatusPage
    push: StalePush
    listener: RedisCoordinator
    other: RedisCoordinator

    async def change_the_page(self) -> None:
        """What another replica's withdrawal commits (its signal may be lost)."""
        async with self.store.transaction() as tx:
            await storage.bump(tx)

    async def rebuilt(self) -> bool:
        builds = self.page.builds
        await self.page.current()
        return self.page.builds > builds


@pytest.fixture
async def replicas(
    tmp_path: Path, migrated_sqlite: Callable[[Path], str], redis: RedisServer
) -> AsyncIterator[Callable[[str], Replicas]]:
    made: list[Replicas] = []
    store = create_store(migrated_sqlite(tmp_path / "bot.db"))
    await store.open()

    def make(listen_url: str) -> Replicas:
        # A page that reads the version only hourly: only a push (or a catch-up) moves it.
        page = StatusPage(store=store, clock=SystemClock(), components=[], refresh_every=3600)
        listener = RedisCoordinator(listen_url, timeout=0.5, heartbeat=0.2)
        push = StalePush(listener, page, retry=0.01)
        made.append(Replicas(store, page, push, listener, RedisCoordinator(redis.url)))
        return made[-1]

    yield make
    for replica in made:
        await replica.push.stop()
        await replica.listener.close()
        await replica.other.close()
    await store.close()


def _listening_metric() -> float | None:
    return REGISTRY.get_sample_value("chatops_replicas_listening")


async def test_a_redis_restart_is_reported_then_caught_up_on(
    redis: RedisServer,
    replicas: Callable[[str], Replicas],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis killed and started again: while it is away /readyz's `replicas` and the metric
    say this replica does not hear the others (one warning, however many retries); once
    back, the page is re-read (a withdrawal signalled meanwhile was lost) and signals are
    heard again."""
    caplog.set_level(logging.INFO, logger="bot.status.push")
    replica = replicas(redis.url)
    replica.push.start()
    await until(replica.push.listening.is_set, "the listener subscribed")
    assert replica.push.health() == "ok" and _listening_metric() == 1
    assert await replica.rebuilt()
    outages = REGISTRY.get_sample_value("chatops_replicas_outages_total") or 0

    redis.kill()
    await until(lambda: replica.push.failures >= 3, "three failed attempts to listen")
    assert replica.push.health().startswith("not hearing the other replicas for ")
    assert _listening_metric() == 0
    await replica.change_the_page()  # its signal went nowhere

    redis.restart()
    await until(replica.push.listening.is_set, "the listener back after the restart")
    assert await replica.rebuilt(), "the page change made while away was never read"
    assert replica.push.health() == "ok" and _listening_metric() == 1
    assert REGISTRY.get_sample_value("chatops_replicas_outages_total") == outages + 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert any("listening for withdrawals again" in r.getMessage() for r in caplog.records)

    heard = replica.push.received
    await replica.other.signal(CHANNEL, "withdrawn")
    await until(lambda: replica.push.received > heard, "the signal after the restart heard")


async def test_a_connection_a_restart_left_silent_is_found_and_listened_again(
    redis: RedisServer, replicas: Callable[[str], Replicas]
) -> None:
    """Redis restarted behind a proxy that lost the close (a host gone without a FIN, a NAT
    that forgot the connection): the listener sat on a silent connection for ever, its
    replica never hearing another withdrawal while everything looked fine. A PING left
    unanswered ends the connection; the listener subscribes again and re-reads the page."""
    with SilentTcp(redis.port or 0) as proxy:
        replica = replicas(f"redis://127.0.0.1:{proxy.port}/0")
        replica.push.start()
        await until(replica.push.listening.is_set, "the listener subscribed")
        assert await replica.rebuilt()

        redis.kill()
        redis.restart()
        await until(lambda: proxy.silenced > 0, "the proxy keeping the dead connection open")
        await replica.change_the_page()  # its signal went nowhere

        before = replica.push.received

        async def heard() -> bool:  # said again until heard: one said while away is lost
            await replica.other.signal(CHANNEL, "withdrawn")
            return replica.push.received > before

        await until(heard, "a signal heard after the restart")
        assert await replica.rebuilt(), "the page change made while away was never read"
