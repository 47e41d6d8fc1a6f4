"""Side effects of incident changes, delivered from the outbox after commit: the
announcement, status updates, notices and card refreshes here; the war room's set-up in
bot.incidents.war_room, failure reports in bot.incidents.failures.

Each handler reads the incident as it is now (not as it was when queued), so a delayed
delivery never shows stale state.
"""

from __future__ import annotations

import logging

from bot import outbox, refs
from bot.clock import Clock
from bot.errors import NotifierError
from bot.incidents import storage
from bot.incidents.effects import (
    ANNOUNCE,
    INVITE,
    NOTICE,
    PIN,
    POST_UPDATE,
    REFRESH,
    SUMMARY,
    WAR_ROOM,
    incident_channel,
)
from bot.incidents.failures import FailureReports
from bot.incidents.flow_steps import FlowSteps, edit_card
from bot.incidents.war_room import WarRoom, given_up, set_up_step
from bot.models import SYSTEM, Incident, Severity
from bot.notify import MessageRef, Notifier
from bot.outbox import Effect, OutboxDispatcher
from bot.permissions import Permissions
from bot.policy import Policy
from bot.store import Store

log = logging.getLogger(__name__)

# Status updates of these severities are copied to the announcement channel.
ANNOUNCE_COPY_SEVERITIES = frozenset({Severity.P0, Severity.P1})


def topic_key(incident: Incident) -> str:
    """What the war room's topic shows; the topic is set again only when this changes."""
    return f"{incident.severity}|{incident.status}|{incident.commander or ''}"


class IncidentFlows:
    """Registers and runs the incident effect handlers."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        policy: Policy,
        notifier: Notifier,
        permissions: Permissions | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.policy = policy
        self.notifier = notifier
        self.steps = FlowSteps(store=store, clock=clock, policy=policy)
        self.failures = FailureReports(steps=self.steps, policy=policy, notifier=notifier)
        self.rooms = WarRoom(
            steps=self.steps,
            policy=policy,
            notifier=notifier,
            permissions=permissions,
            failures=self.failures,
        )

    def register(self, dispatcher: OutboxDispatcher) -> None:
        self.steps.dispatcher = dispatcher
        failed = self.failures.step_failed
        dispatcher.register(ANNOUNCE, self.announce, on_failure=self.failures.announce_failed)
        dispatcher.register(WAR_ROOM, self.rooms.war_room, on_failure=failed)
        # The pages queued at a declaration wait behind the war room's set-up: a step Slack
        # keeps failing is given up after a minute (`/incident warroom` runs it again).
        dispatcher.register(INVITE, set_up_step(self.rooms.invite), on_failure=failed)
        dispatcher.register(SUMMARY, set_up_step(self.rooms.summary), on_failure=failed)
        dispatcher.register(PIN, set_up_step(self.rooms.pin), on_failure=failed)
        dispatcher.register(POST_UPDATE, self.post_update, on_failure=failed)
        dispatcher.register(NOTICE, self.notice, on_failure=failed)
        dispatcher.register(REFRESH, self.refresh, on_failure=failed)

    async def announce(self, effect: Effect) -> None:
        found = await self.steps.incident_with_escalation(effect)
        if found is None:
            return
        incident, escalation = found
        ref = await self.notifier.announce_incident(
            incident, channel=self.policy.announce_channel, escalation=escalation
        )
        await outbox.write_with_mark(
            self.store, "UPDATE incidents SET announce_ts = ? WHERE id = ?", (ref.ts, incident.id)
        )

    # -- updates, notices and cards ---------------------------------------------------------

    async def post_update(self, effect: Effect) -> None:
        """A status update in the incident channel; its copy in the announcement channel."""
        incident = await self.steps.incident(effect)
        if incident is None:
            return
        # The update as it was when given, posted where the incident lives now.
        snapshot = storage.from_snapshot(effect.payload["snapshot"]).evolve(
            channel_id=incident.channel_id
        )
        home = incident_channel(incident, self.policy)
        if effect.payload.get("target") == "announce":
            # A severity lowered from P0/P1 is copied too: the announcement channel heard
            # of the incident at that severity, and would hear nothing of it again.
            was = effect.payload.get("details", {}).get("from")
            copy_wanted = snapshot.severity in ANNOUNCE_COPY_SEVERITIES or (
                effect.payload["kind"] == "severity_changed"
                and was in {s.value for s in ANNOUNCE_COPY_SEVERITIES}
            )
            if not copy_wanted or home == self.policy.announce_channel:
                return  # no copy for this severity, or the update already went there
            channel = self.policy.announce_channel
        else:
            channel = home
        await self.notifier.post_update(snapshot, channel=channel, kind=effect.payload["kind"])

    async def notice(self, effect: Effect) -> None:
        """One line in the war room; without one, in the announcement's thread."""
        incident = await self.steps.incident(effect)
        if incident is None:
            return
        thread_ts = None if incident.channel_id else incident.announce_ts
        said = effect.payload.get("said", "")
        # Notices queued before parts were kept carry their line as markup.
        parts = refs.load(effect.payload.get("parts")) or refs.legacy(
            effect.payload.get("text", ""), said
        )
        await self.notifier.post_notice(
            incident,
            channel=incident_channel(incident, self.policy),
            kind=effect.payload.get("kind", ""),
            text=parts,
            said=said,
            actor=effect.payload.get("actor", SYSTEM.user_id),
            thread_ts=thread_ts,
        )

    async def _superseded(self, effect: Effect) -> bool:
        """A later refresh of the same incident is queued: it will show the newer state."""
        async with self.store.transaction() as tx:
            return await outbox.later_undone(tx, effect)

    async def refresh(self, effect: Effect) -> None:
        """Edit the summary and the announcement in place; set the war room's topic."""
        if effect.payload.get("kind") != "war_room":
            await self._refresh(effect)
            return
        try:  # the war room's set-up: the declaration's pages wait behind it
            await self._refresh(effect)
        except NotifierError as exc:
            if (final := given_up(effect, exc)) is None:
                raise
            raise final from exc

    async def _refresh(self, effect: Effect) -> None:
        if await self._superseded(effect):
            return
        found = await self.steps.incident_with_escalation(effect)
        if found is None:
            return
        incident, escalation = found
        # The war room's own set-up has just posted (or edited) the summary.
        fresh_summary = effect.payload.get("kind") == "war_room"
        if incident.channel_id and incident.summary_ts and not fresh_summary:
            ref = MessageRef(incident.channel_id, incident.summary_ts)
            if not await edit_card(self.notifier, incident, ref, escalation):
                await self.rooms.forget_summary(incident)
                async with self.store.transaction() as tx:
                    await self.steps.queue(tx, incident, SUMMARY, kind="summary_gone")
                self.steps.kick()
        if incident.announce_ts:
            ref = MessageRef(self.policy.announce_channel, incident.announce_ts)
            if not await edit_card(self.notifier, incident, ref, escalation):
                log.info("%s: the announcement was deleted; not editing it", incident.id)
        if incident.channel_id:
            await self._refresh_topic(incident)

    async def _refresh_topic(self, incident: Incident) -> None:
        key = topic_key(incident)
        async with self.store.transaction() as tx:
            row = await tx.fetchone("SELECT topic_key FROM incidents WHERE id = ?", (incident.id,))
        if row is not None and row["topic_key"] == key:
            return  # unchanged: setting it again would post a line in the channel
        assert incident.channel_id is not None
        await self.notifier.set_topic(incident, channel=incident.channel_id)
        async with self.store.transaction() as tx:
            await tx.execute("UPDATE incidents SET topic_key = ? WHERE id = ?", (key, incident.id))
