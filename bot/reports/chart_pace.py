"""One statistics chart per person at a time: drawing and uploading one costs the bot a
thread's CPU and a Slack upload, and `/incident stats` typed in a loop would keep both busy.

The pause is held in the coordinator (Redis across replicas when REDIS_URL is set, the
process's own otherwise); its value is when it ends, so any replica can say when to come back.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bot.clock import Clock
from bot.coordination import Coordinator
from bot.errors import Conflict, CoordinatorUnavailable

log = logging.getLogger(__name__)

CHART_EVERY = 30.0  # seconds between two charts of one person's


class ChartTooSoon(Conflict):
    """This person drew a chart moments ago; `retry_at` is when they may draw the next."""

    def __init__(self, retry_at: datetime, now: datetime, every: float = CHART_EVERY) -> None:
        self.retry_at = retry_at
        wait = max(1, round((retry_at - now).total_seconds()))
        super().__init__(
            f"One statistics chart per person every {round(every)} s: try again in"
            f" {wait} s (after {retry_at.astimezone(UTC):%H:%M:%S} UTC)."
        )


def _key(user_id: str) -> str:
    return f"stats-chart:{user_id}"


class ChartPace:
    """Who may draw a chart now."""

    def __init__(self, coordinator: Coordinator, clock: Clock, every: float = CHART_EVERY) -> None:
        self.coordinator = coordinator
        self.clock = clock
        self.every = every

    async def take(self, user_id: str) -> str | None:
        """Start this person's pause: the value to `give_back` if no chart came of it, or
        None when the coordinator did not answer (the chart is drawn anyway: statistics
        matter more than the pace). ChartTooSoon while their last pause lasts."""
        now = self.clock.now()
        value = str(now.timestamp() + self.every)
        try:
            holder = await self.coordinator.hold(_key(user_id), value, self.every)
        except CoordinatorUnavailable as exc:
            log.warning("statistics chart of %s drawn without a pace: %s", user_id, exc)
            return None
        if holder is None:
            return value
        try:
            retry_at = datetime.fromtimestamp(float(holder), tz=UTC)
        except (ValueError, OverflowError):
            retry_at = datetime.fromtimestamp(now.timestamp() + self.every, tz=UTC)
        # Another replica's clock may be off: the pause never outlasts its own TTL.
        latest = datetime.fromtimestamp(now.timestamp() + self.every, tz=UTC)
        raise ChartTooSoon(min(max(retry_at, now), latest), now, self.every)

    async def give_back(self, user_id: str, value: str | None) -> None:
        """End a pause that drew nothing (the store failed): they may try again at once."""
        if value is None:
            return
        try:
            await self.coordinator.release(_key(user_id), value)
        except CoordinatorUnavailable as exc:  # its TTL ends it
            log.warning("statistics pace of %s not released: %s", user_id, exc)
