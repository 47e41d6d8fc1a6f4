"""Delivery of the report effects (outbox handlers): each reads the current state, then makes
one call on the ReportPublisher port, so a retry repeats only that call."""

from __future__ import annotations

import base64
import logging
from datetime import datetime

from bot import outbox
from bot.clock import Clock
from bot.errors import NotifierError
from bot.incidents import storage as incidents
from bot.outbox import Effect, OutboxDispatcher
from bot.reports import stats, storage
from bot.reports.followups import ACTION_REMIND
from bot.reports.publisher import ReportPublisher
from bot.store import Store

log = logging.getLogger(__name__)

UPLOAD_REPORT = "reports.upload_report"
UPLOAD_STATS = "reports.upload_stats"
# Slack's refusals of the channel itself (the bot is not in a private channel or a DM the
# command was typed in, or it was archived): the file goes to the requester instead.
CHANNEL_REFUSALS = frozenset({"channel_not_found", "not_in_channel", "is_archived"})


class ReportDelivery:
    def __init__(self, store: Store, clock: Clock, publisher: ReportPublisher) -> None:
        self.store = store
        self.clock = clock
        self.publisher = publisher

    def register(self, dispatcher: OutboxDispatcher) -> None:
        dispatcher.register(UPLOAD_REPORT, self._deliver_report, on_failure=self._not_shared)
        dispatcher.register(UPLOAD_STATS, self._deliver_stats, on_failure=self._not_shared)
        dispatcher.register(ACTION_REMIND, self._deliver_reminder)
        self._dispatcher = dispatcher

    async def _deliver_report(self, effect: Effect) -> None:
        async with self.store.transaction() as tx:
            incident = await incidents.get(tx, effect.incident or "")
        if incident is None:
            return
        await self.publisher.upload_report(
            incident,
            channel=effect.payload["channel"],
            markdown=effect.payload["markdown"],
            requested_by=effect.payload["by"],
            refused_in=effect.payload.get("refused_in"),
        )

    async def _not_shared(self, effect: Effect, error: NotifierError) -> None:
        """Slack refused the file for good: the person who asked was told it is being
        shared. A channel that will not take it (the bot is not in it, it was archived):
        the file goes to them by direct message instead, saying why. Anything else, or the
        direct message refused too: they hear that it was not shared, and Slack's reason."""
        if not effect.payload.get("refused_in") and error.error_code in CHANNEL_REFUSALS:
            payload = {**effect.payload, "refused_in": effect.payload["channel"]}
            async with self.store.transaction() as tx:
                await outbox.enqueue(tx, self.clock.now(), effect.kind, payload, lane=effect.lane)
            self._dispatcher.kick()
            return
        try:
            await self.publisher.not_shared(
                incident_id=effect.incident if effect.kind == UPLOAD_REPORT else None,
                channel=effect.payload["channel"],
                requested_by=effect.payload["by"],
                error_code=error.error_code or str(error),
            )
        except NotifierError as exc:
            log.warning("could not tell %s the file was not shared: %s", effect.payload["by"], exc)

    async def _deliver_stats(self, effect: Effect) -> None:
        payload = effect.payload
        since, until = stats.window(
            datetime.fromtimestamp(payload["until"], self.clock.now().tzinfo), payload["days"]
        )
        async with self.store.transaction() as tx:
            figures = await stats.compute(tx, since=since, until=until, days=payload["days"])
        await self.publisher.upload_stats(
            figures,
            channel=payload["channel"],
            png=base64.b64decode(payload["png"]),
            requested_by=payload["by"],
            refused_in=payload.get("refused_in"),
        )

    async def _deliver_reminder(self, effect: Effect) -> None:
        async with self.store.transaction() as tx:
            item = await storage.get_item(tx, int(effect.payload["item_id"]))
            incident = await incidents.get(tx, effect.incident or "")
        if item is None or incident is None or not item.is_open:
            return  # closed after the reminder fired: nobody needs it any more
        await self.publisher.remind_action_item(
            item, incident, overdue=bool(effect.payload.get("overdue"))
        )
