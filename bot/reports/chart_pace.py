"""One statistics chart, and one post-incident report, per person at a time: drawing or
rendering one and uploading it costs the bot CPU and a Slack upload, and `/incident stats` or
`/incident report` typed in a loop would keep both busy. Each has a pace of its own
(`REPORT` names the report's), so a report does not wait for a chart.

The pause is held in the coordinator (Redis across replicas when REDIS_URL is set, the
process's own otherwise); its value is when it ends, so any replica can say when to come back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.clock import Clock
from bot.coordination import Coordinator
from bot.errors import Conflict, CoordinatorUnavailable

log = logging.getLogger(__name__)

CHART_EVERY = 30.0  # seconds between two charts (or two reports) of one person's


@dataclass(frozen=True, slots=True)
class Paced:
    """What is paced: its name in the refusal, and its coordinator keys' prefix."""

    name: str
    key: str


CHART = Paced("statistics chart", "stats-chart")
REPORT = Paced("report", "report-upload")


class ChartTooSoon(Conflict):
    """This person drew a chart (or shared a report) moments ago; `retry_at` is when they may
    ask for the next."""

    def __init__(
        self, retry_at: datetime, now: datetime, every: float = CHART_EVERY, name: str = CHART.name
    ) -> None:
        self.retry_at = retry_at
        wait = max(1, round((retry_at - now).total_seconds()))
        super().__init__(
            f"One {name} per person every {round(every)} s: try again in"
            f" {wait} s (after {retry_at.astimezone(UTC):%H:%M:%S} UTC)."
        )


class ChartPace:
    """Who may draw a chart (or, with `paced=REPORT`, share a report) now."""

    def __init__(
        self,
        coordinator: Coordinator,
        clock: Clock,
        every: float = CHART_EVERY,
        *,
        paced: Paced = CHART,
    ) -> None:
        self.coordinator = coordinator
        self.clock = clock
        self.every = every
        self.paced = paced

    def _key(self, user_id: str) -> str:
        return f"{self.paced.key}:{user_id}"

    async def take(self, user_id: str) -> str | None:
        """Start this person's pause: the value to `give_back` if no chart came of it, or
        None when the coordinator did not answer (the chart is drawn anyway: statistics
        matter more than the pace). ChartTooSoon while their last pause lasts."""
        now = self.clock.now()
        value = str(now.timestamp() + self.every)
        try:
            holder = await self.coordinator.hold(self._key(user_id), value, self.every)
        except CoordinatorUnavailable as exc:
            log.warning("%s of %s made without a pace: %s", self.paced.name, user_id, exc)
            return None
        if holder is None:
            return value
        try:
            retry_at = datetime.fromtimestamp(float(holder), tz=UTC)
        except (ValueError, OverflowError):
            retry_at = datetime.fromtimestamp(now.timestamp() + self.every, tz=UTC)
        # Another replica's clock may be off: the pause never outlasts its own TTL.
        latest = datetime.fromtimestamp(now.timestamp() + self.every, tz=UTC)
        raise ChartTooSoon(min(max(retry_at, now), latest), now, self.every, self.paced.name)

    async def give_back(self, user_id: str, value: str | None) -> None:
        """End a pause that drew nothing (the store failed): they may try again at once."""
        if value is None:
            return
        try:
            await self.coordinator.release(self._key(user_id), value)
        except CoordinatorUnavailable as exc:  # its TTL ends it
            log.warning("%s pace of %s not released: %s", self.paced.name, user_id, exc)
