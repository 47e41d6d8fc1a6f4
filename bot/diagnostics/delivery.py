"""Delivering a diagnosis from the outbox: the summary in the channel, then the evidence in
its thread. The run was recorded (audit, timeline) in the transaction that queued them, so a
Slack outage delays the summary and never loses it."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from bot import outbox
from bot.clock import Clock
from bot.diagnostics.findings import Report, report_from_json
from bot.errors import NotifierError
from bot.models import SYSTEM
from bot.notify import MessageRef
from bot.outbox import Effect, OutboxDispatcher
from bot.store import Store

log = logging.getLogger(__name__)

SUMMARY = "diagnosis.summary"
EVIDENCE = "diagnosis.evidence"


class DiagnosisNotifier(Protocol):
    """How a diagnosis reaches people; NotifierError as for every notifier."""

    async def post_summary(
        self, report: Report, *, channel: str, actor: str, incident_id: str | None = None
    ) -> MessageRef:
        """Post the graded summary with its suggestion buttons (naming `incident_id`, the
        incident the run was for) in `channel`."""
        ...

    async def post_evidence(self, report: Report, ref: MessageRef) -> None:
        """Reply in the summary's thread with the evidence."""
        ...

    async def tell_failed(
        self, report: Report, *, user_id: str, error: str, incident_id: str | None = None
    ) -> None:
        """Tell the person who asked, by direct message, that the summary could not be posted."""
        ...


async def post_now(
    notifier: DiagnosisNotifier,
    report: Report,
    *,
    channel: str,
    actor: str,
    incident_id: str | None = None,
) -> MessageRef:
    """The summary, then its evidence in the thread, at once (the outbox could not take
    them). NotifierError as the notifier raises it."""
    ref = await notifier.post_summary(report, channel=channel, actor=actor, incident_id=incident_id)
    await notifier.post_evidence(report, ref)
    return ref


class DiagnosisDelivery:
    def __init__(self, *, store: Store, clock: Clock, notifier: DiagnosisNotifier) -> None:
        self.store = store
        self.clock = clock
        self.notifier = notifier

    def register(self, dispatcher: OutboxDispatcher) -> None:
        dispatcher.register(SUMMARY, self._summary, on_failure=self._failed)
        dispatcher.register(EVIDENCE, self._evidence, on_failure=self._failed)

    async def _summary(self, effect: Effect) -> None:
        payload = effect.payload
        report = report_from_json(payload["report"])
        ref = await self.notifier.post_summary(
            report,
            channel=str(payload["channel"]),
            actor=str(payload["actor"]),
            incident_id=_incident_of(payload),
        )
        async with self.store.transaction() as tx:
            # Its own effect, so a failure of the evidence never posts the summary twice.
            await outbox.enqueue(
                tx,
                self.clock.now(),
                EVIDENCE,
                {**payload, "thread": {"channel": ref.channel, "ts": ref.ts}},
                lane=effect.lane,
            )

    async def _evidence(self, effect: Effect) -> None:
        thread = effect.payload["thread"]
        report = report_from_json(effect.payload["report"])
        await self.notifier.post_evidence(report, MessageRef(thread["channel"], thread["ts"]))

    async def _failed(self, effect: Effect, error: NotifierError) -> None:
        log.warning("diagnosis %s failed for good: %s", effect.kind, error)
        if effect.kind == SUMMARY and effect.payload.get("actor") != SYSTEM.user_id:
            # The bot's own runs (on an alert) have nobody to tell by direct message.
            report = report_from_json(effect.payload["report"])
            await self.notifier.tell_failed(
                report,
                user_id=str(effect.payload["actor"]),
                error=error.error_code or str(error),
                incident_id=_incident_of(effect.payload),
            )


def _incident_of(payload: dict[str, Any]) -> str | None:
    """The incident a queued summary was run for (none in summaries queued before it was)."""
    incident = payload.get("incident")
    return str(incident) if incident else None
