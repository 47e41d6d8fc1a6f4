"""The status page's push listener (bot.status.push) when Redis is down."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.clock import SystemClock
from bot.coordination.redis import RedisCoordinator
from bot.status.page import StatusPage
from bot.status.push import StalePush
from bot.store import create_store
from tests.waiting import until


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
