"""The statistics chart's pace (bot.reports.chart_pace) held in Redis: two replicas of the
bot, each with its own connection, refuse the same person's second chart alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.clock import FakeClock
from bot.coordination.redis import RedisCoordinator
from bot.reports.chart_pace import ChartPace, ChartTooSoon


async def test_a_pause_taken_on_one_replica_holds_on_another(redis_url: str) -> None:
    clock = FakeClock(datetime(2026, 12, 5, 3, 0, tzinfo=UTC))
    first, second = RedisCoordinator(redis_url), RedisCoordinator(redis_url)
    try:
        one, other = ChartPace(first, clock), ChartPace(second, clock)
        taken = await one.take("U0BOB")
        assert taken is not None
        clock.advance(seconds=12)
        with pytest.raises(ChartTooSoon) as refused:
            await other.take("U0BOB")
        # The other replica says when, from the value the first one wrote.
        assert refused.value.retry_at == clock.now() + timedelta(seconds=18)
        assert "try again in 18 s (after 03:00:30 UTC)" in str(refused.value)
        assert await other.take("U0CAROL") is not None  # someone else may draw one
        # A replica whose clock runs an hour behind says no more than the pause's length.
        with pytest.raises(ChartTooSoon) as behind:
            await ChartPace(second, FakeClock(clock.now() - timedelta(hours=1))).take("U0CAROL")
        assert "try again in 30 s" in str(behind.value)
        # Another pace length is said as such.
        with pytest.raises(ChartTooSoon) as longer:
            await ChartPace(second, clock, every=120).take("U0CAROL")
        assert str(longer.value).startswith("One statistics chart per person every 120 s")
        # A chart that drew nothing (the store failed) gives its pause back at once.
        await one.give_back("U0BOB", taken)
        assert await other.take("U0BOB") is not None
    finally:
        await first.close()
        await second.close()
