"""One way to run in the background (bot/background.py): a failed round is logged and the loop
keeps going, backing off with jitter; the dedup pruner once died on any error but StoreError."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import dedup
from bot.background import JITTER, BackgroundLoop, jitter
from bot.clock import FakeClock
from bot.dedup import HandledRequestsPruner
from bot.errors import StoreUnavailable
from bot.store import Store, create_store
from bot.store.migrate import migrate
from tests.waiting import until

T0 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


def test_jitter_spreads_a_delay_over_twenty_percent() -> None:
    assert jitter(10.0, rng=lambda: 0.0) == pytest.approx(10.0 * (1 - JITTER))
    assert jitter(10.0, rng=lambda: 1.0) == pytest.approx(10.0 * (1 + JITTER))
    assert len({round(jitter(10.0), 6) for _ in range(50)}) > 1


async def test_a_failing_round_is_logged_and_the_loop_backs_off_and_keeps_going(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes: list[Exception | None] = [StoreUnavailable("down"), RuntimeError("bug"), None]
    rounds = 0

    async def round_() -> None:
        nonlocal rounds
        rounds += 1
        if outcomes and (failure := outcomes.pop(0)) is not None:
            raise failure

    loop = BackgroundLoop("test-loop", round_, interval=0.01, max_backoff=0.05)
    with caplog.at_level(logging.WARNING, logger="bot.background"):
        assert not await loop.run_once()
        assert loop.failures == 1 and 0.008 <= loop.next_wait() <= 0.012
        assert not await loop.run_once()
        assert loop.failures == 2 and 0.016 <= loop.next_wait() <= 0.024
        assert await loop.run_once()
    assert loop.failures == 0 and loop.next_wait() == 0.01
    outage, bug = caplog.records
    assert (
        outage.levelno == logging.WARNING and outage.exc_info is None and "down" in outage.message
    )
    assert bug.levelno == logging.ERROR and bug.exc_info is not None

    loop.start()
    await until(lambda: rounds >= 6, "the loop to keep running")
    await loop.stop()
    assert not loop.running


def test_the_back_off_is_capped_and_never_shorter_than_the_interval() -> None:
    loop = BackgroundLoop("capped", lambda: asyncio.sleep(0), interval=1.0, max_backoff=8.0)
    loop.failures = 30
    assert 8.0 * (1 - JITTER) <= loop.next_wait() <= 8.0 * (1 + JITTER)
    slow = BackgroundLoop("slow", lambda: asyncio.sleep(0), interval=3600.0, max_backoff=60.0)
    slow.failures = 1
    assert slow.next_wait() >= 3600.0 * (1 - JITTER)


class _BrokenOnce:
    """A real store whose first transaction fails with an error that is no StoreError."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.failed = False

    def transaction(self) -> Any:
        if not self.failed:
            self.failed = True
            raise ValueError("a bug, not an outage")
        return self._store.transaction()


async def test_the_dedup_pruner_survives_an_error_that_is_not_a_store_error(
    tmp_path: Path,
) -> None:
    store = create_store(f"sqlite:///{tmp_path / 'bot.db'}")
    await store.open()
    await migrate(store)
    try:
        async with store.transaction() as tx:
            await dedup.mark_handled(tx, "old", T0 - timedelta(days=2))
        broken = _BrokenOnce(store)
        pruner = HandledRequestsPruner(broken, FakeClock(T0), retention=86_400, interval=0.01)  # type: ignore[arg-type]  # a wrapper of the real store

        async def forgotten() -> bool:
            async with store.transaction() as tx:
                return not await tx.fetchall("SELECT 1 FROM handled_requests")

        pruner.start()
        await until(forgotten, "the pruner to prune after its failed round")
        await pruner.stop()
        assert broken.failed
    finally:
        await store.close()
