"""Timeline reactions that arrived while the database was down, kept until it is back.

Slack delivers a `reaction_added` event once (its retries come within minutes, and the
request is already marked handled by the coordinator), so a reaction that finds the store
down is kept in the coordinator's queue, Redis when configured: shared by the replicas and
outliving a restarted process. A background round replays them oldest first once the store
answers. Replaying is idempotent: the timeline keeps one entry per Slack message
(`source`) and each request ID is handled once, so two processes replaying the same item
record it once.
"""

from __future__ import annotations

import json
import logging

from pydantic import BaseModel, ValidationError

from bot.audit import AuditLog, AuditRecord
from bot.background import BackgroundLoop
from bot.coordination import Coordinator
from bot.errors import (
    ChatOpsError,
    DuplicateRequest,
    NotifierError,
    PermissionDenied,
    StoreError,
)
from bot.incidents.service import IncidentService
from bot.models import Actor

log = logging.getLogger(__name__)

QUEUE = "pending-timeline-reactions"
DEFAULT_INTERVAL_SECONDS = 2.0
_BATCH = 50


class PendingPin(BaseModel):
    """One reaction to record: which message, who reacted, the Slack request it came in."""

    channel_id: str
    message_ts: str
    user_id: str
    request_id: str | None = None


class PendingPins:
    """Keeps reactions the store could not take, and records them when it is back."""

    def __init__(
        self,
        *,
        coordinator: Coordinator,
        incidents: IncidentService,
        audit: AuditLog | None = None,
        interval: float = DEFAULT_INTERVAL_SECONDS,
    ) -> None:
        self.coordinator = coordinator
        self.incidents = incidents
        # A kept reaction refused once the store is back is on record, as one refused at once.
        self.audit = audit
        self.interval = interval
        self._loop = BackgroundLoop(
            "pending-pins", self._round, interval=interval, first_round_now=False
        )

    async def keep(self, pin: PendingPin) -> None:
        """Queue `pin` for a later round; raises CoordinatorUnavailable when it cannot."""
        await self.coordinator.keep(QUEUE, pin.model_dump_json())

    async def replay(self) -> int:
        """Record the kept reactions, oldest first, until the store fails again; return how
        many were handled (recorded, or found needing nothing)."""
        handled = 0
        for raw in await self.coordinator.kept(QUEUE, _BATCH):
            try:
                pin = PendingPin.model_validate_json(raw)
            except (ValidationError, json.JSONDecodeError):
                log.error("dropping a kept reaction that cannot be read: %.200s", raw)
                await self.coordinator.forget(QUEUE, raw)
                continue
            try:
                await self.incidents.add_message_to_timeline(
                    channel_id=pin.channel_id,
                    message_ts=pin.message_ts,
                    actor=Actor(user_id=pin.user_id),
                    request_id=pin.request_id,
                )
            except StoreError:
                return handled  # still down (or down again): the next round tries
            except DuplicateRequest:
                pass  # another process recorded it first
            except PermissionDenied:
                if not await self._refused(pin):
                    return handled  # the store failed again: the next round tries
            except NotifierError as exc:
                if exc.retryable:
                    return handled  # Slack is the one down now: keep it
                log.warning(
                    "kept reaction on %s/%s dropped: %s", pin.channel_id, pin.message_ts, exc
                )
            except ChatOpsError as exc:
                log.warning(
                    "kept reaction on %s/%s dropped: %s", pin.channel_id, pin.message_ts, exc
                )
            await self.coordinator.forget(QUEUE, raw)
            handled += 1
        return handled

    async def _refused(self, pin: PendingPin) -> bool:
        """Audit a kept reaction by someone who may not change the incident; False when the
        store would not take it."""
        if self.audit is None:
            return True
        try:
            await self.audit.record(
                AuditRecord(
                    actor=pin.user_id,
                    action="incident.timeline_message",
                    target=pin.channel_id,
                    outcome="refused: not allowed",
                    args={"channel": pin.channel_id, "ts": pin.message_ts},
                    request_id=pin.request_id,
                )
            )
        except StoreError:
            return False
        return True

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _round(self) -> None:
        while await self.replay() == _BATCH:
            pass  # a full batch went through: there may be more
