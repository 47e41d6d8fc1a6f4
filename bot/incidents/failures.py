"""Failure reporting for incident effects: a step that failed for good goes on the timeline
and in the audit log, and the people concerned are told (the war room, else the declarer)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from bot import refs
from bot.errors import NotifierError, StoreBusy, StoreUnavailable
from bot.incidents import journal, storage
from bot.incidents.effects import (
    INVITE,
    NOTICE,
    PIN,
    POST_UPDATE,
    REFRESH,
    SUMMARY,
    WAR_ROOM,
    incident_channel,
)
from bot.incidents.flow_steps import FlowSteps
from bot.incidents.naming import war_room_name
from bot.models import SYSTEM, Incident, TimelineEvent
from bot.notify import Notifier
from bot.outbox import Effect
from bot.policy import Policy

log = logging.getLogger(__name__)

# Which step each effect is, in failure reports ("I could not <step>").
_STEPS = {
    WAR_ROOM: "create_war_room",
    INVITE: "invite",
    SUMMARY: "post_summary",
    PIN: "pin_summary",
    POST_UPDATE: "post_update",
    NOTICE: "post_notice",
    REFRESH: "refresh_summary",
}


class FailureReports:
    """The on_failure handlers of the incident effects, and the failure records they share."""

    def __init__(self, *, steps: FlowSteps, policy: Policy, notifier: Notifier) -> None:
        self.steps = steps
        self.store = steps.store
        self.clock = steps.clock
        self.policy = policy
        self.notifier = notifier

    async def announce_failed(self, effect: Effect, error: NotifierError) -> None:
        incident = await self._incident(effect)
        if incident is None:
            return
        now = self.clock.now()
        target = self.policy.announce_channel
        async with self._unless_store_down(incident, "announce"), self.store.transaction() as tx:
            await journal.record(
                tx,
                now,
                incident.id,
                actor=SYSTEM.user_id,
                kind="notification_failed",
                text=refs.text(
                    "Announcement in ",
                    refs.Channel(target),
                    f" failed: {error.error_code or error}",
                ),
                action="incident.announce",
                args={"channel": target},
                outcome=f"failed: {error.error_code or error}",
            )
        await self.report(incident, "announce", target, _code(error), in_channel=False)

    async def step_failed(self, effect: Effect, error: NotifierError) -> None:
        """A step failed for good: timeline, audit, and a word to the people concerned."""
        incident = await self._incident(effect)
        if incident is None:
            return
        step = _STEPS.get(effect.kind, effect.kind)
        target: str | None = incident.channel_id
        if effect.kind == WAR_ROOM:
            target = "#" + war_room_name(incident.id, incident.title, drill=incident.drill)
        elif effect.kind == POST_UPDATE and effect.payload.get("target") == "announce":
            target = self.policy.announce_channel
        elif effect.kind in (POST_UPDATE, NOTICE):
            target = incident_channel(incident, self.policy)
        async with self._unless_store_down(incident, step):
            await self.record(incident, step, target, error)
        if effect.kind == NOTICE:
            return  # a missed one-liner is on the timeline; not worth a message of its own
        # Where the war room itself is what failed, tell the declarer directly.
        in_channel = effect.kind in (INVITE, PIN, REFRESH)
        await self.report(incident, step, target, _code(error), in_channel=in_channel)

    async def _incident(self, effect: Effect) -> Incident | None:
        # A read of its own (not a writer's turn, as FlowSteps.incident takes on SQLite): with
        # the writers held up, whom to tell can still be read, and the report still go out.
        async with self.store.snapshot() as tx:
            return await storage.get(tx, effect.incident or "")

    @contextlib.asynccontextmanager
    async def _unless_store_down(self, incident: Incident, step: str) -> AsyncIterator[None]:
        """The record of a failure the store cannot take (down, or busy past its wait) is
        logged, and the report still goes out: the effect is failed for good already, so
        raising would lose the only word anyone gets of it."""
        try:
            yield
        except (StoreUnavailable, StoreBusy) as exc:
            log.error("%s: the failure of %s could not be recorded: %s", incident.id, step, exc)

    async def record(
        self,
        incident: Incident,
        step: str,
        target: str | None,
        error: NotifierError | str,
        *,
        audited: bool = True,
    ) -> None:
        """Put a failed step on the timeline (and in the audit log unless `audited` is
        False: the step's own entry says it failed already)."""
        code = _code(error)
        now = self.clock.now()
        where = f" ({target})" if target else ""
        event = TimelineEvent(
            incident_id=incident.id,
            at=now,
            actor=SYSTEM.user_id,
            kind="notification_failed",
            text=f"Slack step {step}{where} failed: {code}",
            data={"step": step, "target": target, "error": code},
        )
        async with self.store.transaction() as tx:
            if not audited:  # the step's own audit entry already says it failed
                await storage.add_timeline(tx, event)
                return
            await journal.record(
                tx,
                now,
                incident.id,
                actor=event.actor,
                kind=event.kind,
                text=event.text,
                action=f"incident.{step}",
                args={"target": target},
                outcome=f"failed: {code}",
                data=event.data,
            )

    async def report(
        self, incident: Incident, step: str, target: str | None, error: str, *, in_channel: bool
    ) -> None:
        """Tell the war room when it can hear it, else the declarer by direct message. The
        bot has no direct messages to read: an incident it declared is told in its channel."""
        declarer = incident.declarer
        channel = incident.channel_id if in_channel else None
        if declarer is None:
            channel = incident_channel(incident, self.policy)
        if channel:
            try:
                await self.notifier.report_failure_in_channel(
                    incident, channel=channel, step=step, target=target, error=error
                )
                return
            except NotifierError:
                log.warning("%s: could not report %s in %s", incident.id, step, channel)
        if declarer is None:
            return  # on the timeline and in the audit log all the same
        try:
            await self.notifier.report_failure(
                incident, user_id=declarer, step=step, target=target, error=error
            )
        except NotifierError:
            log.exception("could not tell %s that %s failed", declarer, step)


def _code(error: NotifierError | str) -> str:
    if isinstance(error, str):
        return error
    return error.error_code or str(error)
