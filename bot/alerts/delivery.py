"""Delivering what alerts change, from the outbox: one thread message per batch of alerts,
and the diagnosis of the service posted where the responders read (its war room).

Both are effects of the incident, so they wait their turn behind the declaration, the war
room and its set-up (bot.outbox's order): the war room exists when they run.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot import refs
from bot.alerts import silence_records, storage
from bot.alerts.matchers import unsilenced_of
from bot.alerts.silences import REFRESH_BATCH
from bot.alerts.storage import StoredAlert
from bot.alerts.telling import DIAGNOSE, POST
from bot.clock import Clock
from bot.diagnostics.service import DiagnosticsService
from bot.errors import ChatOpsError, NotifierError, StoreBusy, StoreUnavailable
from bot.incidents import journal
from bot.incidents import storage as incident_storage
from bot.incidents.effects import incident_channel
from bot.models import SYSTEM, Incident
from bot.notify import MessageRef
from bot.outbox import Effect, OutboxDispatcher
from bot.policy import Policy
from bot.store import Store, Tx

log = logging.getLogger(__name__)

DIAGNOSE_TIMEOUT = 15.0  # below the outbox's handler timeout: probes have their own


@dataclass(frozen=True, slots=True)
class AlertBatch:
    """What one thread message tells: alerts that fired and cleared since the last one."""

    incident: Incident
    batch: int
    fired: list[StoredAlert]
    resolved: list[StoredAlert]
    firing_now: int
    resolved_total: int
    silenceable: bool  # an Alertmanager is configured and some of these came from one
    # The end of the silences made from this message and running by the record, if any.
    silenced_until: datetime | None = None

    @property
    def all_clear(self) -> bool:
        return self.firing_now == 0 and bool(self.resolved)


class AlertNotifier(Protocol):
    """How a batch of alerts reaches people; NotifierError as for every notifier."""

    async def post_alerts(
        self, batch: AlertBatch, *, channel: str, thread_ts: str | None
    ) -> MessageRef:
        """Post one message listing the batch (links, counts; Silence and Resolve buttons)."""
        ...

    async def update_alerts(self, batch: AlertBatch, ref: MessageRef) -> None:
        """Show the batch's message as it stands now (silenced until when, or its button)."""
        ...


class AlertDelivery:
    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        policy: Policy,
        notifier: AlertNotifier,
        diagnostics: DiagnosticsService,
    ) -> None:
        self.store = store
        self.clock = clock
        self.policy = policy
        self.notifier = notifier
        self.diagnostics = diagnostics

    def register(self, dispatcher: OutboxDispatcher) -> None:
        dispatcher.register(POST, self._post, on_failure=self._unposted)
        dispatcher.register(REFRESH_BATCH, self._refresh)
        dispatcher.register(DIAGNOSE, self._diagnose, apart=True)  # its checks may hang

    async def _unposted(self, effect: Effect, error: NotifierError) -> None:
        """Slack refused a batch's message for good (the war room archived, the bot removed
        from it): on the timeline and in the audit log, as every failed notification is,
        rather than the alerts it told of passing unseen and unrecorded."""
        async with self.store.transaction() as tx:
            incident = await incident_storage.get(tx, effect.incident or "")
            if incident is None:
                return
            channel = incident_channel(incident, self.policy)
            code = error.error_code or str(error)
            await journal.record(
                tx,
                self.clock.now(),
                incident.id,
                actor=SYSTEM.user_id,
                kind="notification_failed",
                text=refs.text("Alerts message in ", refs.Channel(channel), f" failed: {code}"),
                action="alerts.post",
                args={"channel": channel, "batch": effect.payload.get("batch")},
                outcome=f"failed: {code}",
            )

    async def _post(self, effect: Effect) -> None:
        incident_id = effect.incident
        assert incident_id is not None
        number = int(effect.payload["batch"])
        async with self.store.transaction() as tx:
            incident = await incident_storage.get(tx, incident_id)
            if incident is None:
                return
            fired, resolved = await storage.claim_batch(tx, incident_id, number)
            batch = await self._batch(tx, incident, number, fired, resolved)
        if not fired and not resolved:
            return
        ref = await self.notifier.post_alerts(
            batch,
            channel=incident_channel(incident, self.policy),
            thread_ts=None if incident.channel_id else incident.announce_ts,
        )
        try:
            async with self.store.transaction() as tx:
                await storage.set_message(tx, incident_id, number, ref.channel, ref.ts)
        except (StoreUnavailable, StoreBusy) as exc:
            # Posted: raising would post it again. Only its later edits (silenced until...)
            # are lost.
            log.warning(
                "alerts message %s:%s posted, its place not kept: %s", incident_id, number, exc
            )

    async def _refresh(self, effect: Effect) -> None:
        """A silence made or ended: the batch's message edited to show it (see REFRESH_BATCH)."""
        incident_id = str(effect.payload.get("incident") or effect.incident)
        number = int(effect.payload["batch"])
        async with self.store.transaction() as tx:
            incident = await incident_storage.get(tx, incident_id)
            where = await storage.message_of(tx, incident_id, number)
            if incident is None or where is None:
                return  # never posted: nothing shows a button
            fired = await storage.batch_alerts(tx, incident_id, number)
            resolved = await storage.batch_resolved(tx, incident_id, number)
            batch = await self._batch(tx, incident, number, fired, resolved)
        await self.notifier.update_alerts(batch, MessageRef(*where))

    async def _batch(
        self,
        tx: Tx,
        incident: Incident,
        number: int,
        fired: list[StoredAlert],
        resolved: list[StoredAlert],
    ) -> AlertBatch:
        firing_now, resolved_total = await storage.counts(tx, incident.id)
        running = await silence_records.silenced_batch(tx, incident.id, number, self.clock.now())
        # Only Alertmanager's alerts can be silenced there (bot.alerts.silences).
        silenceable = self.policy.alerts.alertmanager_url is not None and any(
            a.status == "firing" and a.source == "alertmanager" for a in fired
        )
        # Shown as silenced only once every alert a click silences is: after a click that
        # Alertmanager failed part way, a later edit of the message (another silence ended,
        # made again) still offers the button for the rest.
        # The batch's alerts as the click read them (resolved ones too): the same matchers.
        whole = running and not unsilenced_of(
            fired, self.policy.alerts.service_label, [s.matchers for s in running]
        )
        until = max((s.ends_at for s in running), default=None) if whole else None
        return AlertBatch(
            incident, number, fired, resolved, firing_now, resolved_total, silenceable, until
        )

    async def _diagnose(self, effect: Effect) -> None:
        incident_id = effect.incident
        assert incident_id is not None
        async with self.store.transaction() as tx:
            incident = await incident_storage.get(tx, incident_id)
        if incident is None or not incident.is_open:
            return
        service = str(effect.payload["service"])
        try:
            async with asyncio.timeout(DIAGNOSE_TIMEOUT):
                # Recorded on the timeline and its summary queued behind this effect.
                await self.diagnostics.diagnose(
                    service,
                    SYSTEM,
                    channel_id=incident_channel(incident, self.policy),
                    via="alert",
                    incident_id=incident.id,  # on its timeline, war room or not
                )
        except (ChatOpsError, TimeoutError) as exc:
            log.warning("automatic diagnosis of %s for %s failed: %s", service, incident_id, exc)
