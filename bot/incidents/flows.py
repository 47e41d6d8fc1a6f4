"""Side effects of incident changes, delivered from the outbox after commit.

Each handler reads the incident as it is now (not as it was when queued), so a delayed
delivery never shows stale state.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from bot import audit, outbox
from bot.audit import AuditRecord
from bot.clock import Clock
from bot.errors import NotifierError
from bot.incidents import journal, storage
from bot.incidents.effects import (
    ANNOUNCE,
    INVITE,
    NOTICE,
    PIN,
    POST_UPDATE,
    REFRESH,
    SUMMARY,
    WAR_ROOM,
)
from bot.incidents.naming import MAX_ATTEMPTS, war_room_name
from bot.models import SYSTEM, Incident, Severity, TimelineEvent
from bot.notify import MessageRef, Notifier
from bot.outbox import Effect, OutboxDispatcher
from bot.permissions import Permissions
from bot.policy import Policy
from bot.store import Store, Tx

log = logging.getLogger(__name__)

# Status updates of these severities are copied to the announcement channel.
ANNOUNCE_COPY_SEVERITIES = frozenset({Severity.P0, Severity.P1})
# Slack's clock against ours, when telling whether a channel is younger than its incident.
ADOPT_CLOCK_SKEW = timedelta(minutes=10)
# A card that is gone (deleted by a person) is posted again rather than edited.
_CARD_GONE = {"message_not_found", "cant_update_message"}
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


def incident_channel(incident: Incident, policy: Policy) -> str:
    """Where an incident's updates go: its war room, else the announcement channel."""
    return incident.channel_id or policy.announce_channel


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
        self.permissions = permissions
        self.dispatcher: OutboxDispatcher | None = None

    def register(self, dispatcher: OutboxDispatcher) -> None:
        self.dispatcher = dispatcher
        dispatcher.register(ANNOUNCE, self.announce, on_failure=self.announce_failed)
        dispatcher.register(WAR_ROOM, self.war_room, on_failure=self.step_failed)
        dispatcher.register(INVITE, self.invite, on_failure=self.step_failed)
        dispatcher.register(SUMMARY, self.summary, on_failure=self.step_failed)
        dispatcher.register(PIN, self.pin, on_failure=self.step_failed)
        dispatcher.register(POST_UPDATE, self.post_update, on_failure=self.step_failed)
        dispatcher.register(NOTICE, self.notice, on_failure=self.step_failed)
        dispatcher.register(REFRESH, self.refresh, on_failure=self.step_failed)

    async def _incident(self, effect: Effect) -> Incident | None:
        async with self.store.transaction() as tx:
            return await storage.get(tx, effect.incident or "")

    async def announce(self, effect: Effect) -> None:
        incident = await self._incident(effect)
        if incident is None:
            return
        ref = await self.notifier.announce_incident(incident, channel=self.policy.announce_channel)
        async with self.store.transaction() as tx:
            await tx.execute(
                "UPDATE incidents SET announce_ts = ? WHERE id = ?", (ref.ts, incident.id)
            )

    async def announce_failed(self, effect: Effect, error: NotifierError) -> None:
        incident = await self._incident(effect)
        if incident is None:
            return
        now = self.clock.now()
        target = self.policy.announce_channel
        async with self.store.transaction() as tx:
            await journal.record(
                tx,
                now,
                incident.id,
                actor=SYSTEM.user_id,
                kind="notification_failed",
                text=f"Announcement in <#{target}> failed: {error.error_code or error}",
                action="incident.announce",
                args={"channel": target},
                outcome=f"failed: {error.error_code or error}",
            )
        await self._report(incident, "announce", target, _code(error), in_channel=False)

    # -- war room ---------------------------------------------------------------------------

    async def _queue(self, tx: Tx, incident: Incident, *kinds: str, **payload: Any) -> None:
        now = self.clock.now()
        for kind in kinds:
            await outbox.enqueue(tx, now, kind, dict(payload), lane=incident.id)

    def _kick(self) -> None:
        # Follow-up steps were queued by a handler: deliver them in the next round at once.
        if self.dispatcher is not None:
            self.dispatcher.kick()

    async def war_room(self, effect: Effect) -> None:
        """Create the war room (unless it exists), then queue invites, summary and topic."""
        incident = await self._incident(effect)
        if incident is None or not incident.is_open:
            return  # resolved before Slack could be reached: no room needed any more
        if incident.channel_id is not None:
            async with self.store.transaction() as tx:
                await self._queue(tx, incident, INVITE, SUMMARY, REFRESH, kind="war_room")
            self._kick()
            return
        channel_id, name = await self._create_channel(incident)
        now = self.clock.now()
        async with self.store.transaction() as tx:
            stored = await tx.execute(
                "UPDATE incidents SET channel_id = ? WHERE id = ? AND channel_id IS NULL",
                (channel_id, incident.id),
            )
            if stored != 1:
                # Another process opened one first (two deliveries of a retried effect).
                log.warning("%s already has a war room; #%s is left unused", incident.id, name)
                return
            await journal.record(
                tx,
                now,
                incident.id,
                actor=SYSTEM.user_id,
                kind="war_room_opened",
                text=f"War room <#{channel_id}> opened",
                action="incident.war_room",
                args={"channel": channel_id, "name": name},
                data={"channel": channel_id, "name": name},
            )
            await self._queue(tx, incident, INVITE, SUMMARY, REFRESH, kind="war_room")
        self._kick()

    async def _create_channel(self, incident: Incident) -> tuple[str, str]:
        """Create the channel under the first free name: `inc-...`, then `-2`, `-3`...

        A name already taken by a channel the bot made for this incident is adopted: an
        earlier attempt created it and its reply was lost (a timeout, a dropped connection).
        """
        for attempt in range(1, MAX_ATTEMPTS + 1):
            name = war_room_name(incident.id, incident.title, attempt=attempt, drill=incident.drill)
            try:
                return await self.notifier.create_channel(name), name
            except NotifierError as exc:
                if exc.error_code != "name_taken":
                    raise
            adopted = await self._own_channel(incident, name)
            if adopted is not None:
                log.info(
                    "%s: adopting #%s, made by an attempt whose reply was lost", incident.id, name
                )
                return adopted, name
        raise NotifierError(
            f"every war room name for {incident.id} is taken",
            error_code="name_taken",
            retryable=False,
        )

    async def _own_channel(self, incident: Incident, name: str) -> str | None:
        """The ID of channel `name` when the bot made it for `incident`, else None.

        The name holds the incident's ID, so a channel of that name created by the bot
        since the declaration, and no other incident's room, can only be this one's.
        """
        found = await self.notifier.find_channel(name)
        if found is None or not found.created_by_bot:
            return None  # a person's channel (or an archived one): take the next name
        if found.created < incident.declared_at - ADOPT_CLOCK_SKEW:
            return None  # older than the incident: from another deployment's database
        async with self.store.transaction() as tx:
            other = await storage.get_by_channel(tx, found.id)
        if other is not None and other.id != incident.id:
            return None
        return found.id

    async def _roster(self, incident: Incident) -> list[str]:
        """Who belongs in the war room: the declarer, role holders, the first level paged."""
        wanted = [incident.declarer, *incident.roles.values()]  # no declarer: the bot did
        levels = self.policy.levels(incident.severity)
        users = list(dict.fromkeys(target for target in wanted if target))
        for target in levels[0].slack_targets if levels else []:
            if not target.startswith("S"):
                users.append(target)
                continue
            try:
                members = await self._group_members(target)
            except NotifierError as exc:
                if exc.retryable:
                    raise
                await self._record_failure(incident, "expand_group", target, exc)
                continue
            users.extend(members)
        return list(dict.fromkeys(users))

    async def _group_members(self, group_id: str) -> list[str]:
        if self.permissions is None:
            return []
        return await self.permissions.expand([group_id])

    async def invite(self, effect: Effect) -> None:
        incident = await self._incident(effect)
        if incident is None or incident.channel_id is None:
            return  # no war room (yet): the room's own set-up invites everyone
        user = effect.payload.get("details", {}).get("user")
        users = [user] if user else await self._roster(incident)
        failures = await self.notifier.invite(incident.channel_id, users)
        invited = [u for u in users if u not in failures]
        now = self.clock.now()
        async with self.store.transaction() as tx:
            await audit.append(
                tx,
                now,
                AuditRecord(
                    actor=SYSTEM.user_id,
                    action="incident.invite",
                    target=incident.id,
                    outcome="ok" if not failures else "partly failed",
                    args={"channel": incident.channel_id, "invited": invited, "failed": failures},
                    incident_id=incident.id,
                ),
            )
        for user_id, error in failures.items():
            await self._record_failure(incident, "invite", user_id, error, audited=False)
            await self._report(incident, "invite", user_id, error, in_channel=True)

    async def summary(self, effect: Effect) -> None:
        """Post the summary card in the war room (or edit it when it exists), then pin it."""
        incident = await self._incident(effect)
        if incident is None or incident.channel_id is None:
            return
        if incident.summary_ts is not None:
            try:
                await self.notifier.update_card(
                    incident, MessageRef(incident.channel_id, incident.summary_ts)
                )
            except NotifierError as exc:
                if exc.error_code not in _CARD_GONE:
                    raise
                incident = await self._forget_summary(incident)
        if incident.summary_ts is None:
            ref = await self.notifier.post_summary(incident, channel=incident.channel_id)
            async with self.store.transaction() as tx:
                await tx.execute(
                    "UPDATE incidents SET summary_ts = ? WHERE id = ?", (ref.ts, incident.id)
                )
                await self._queue(tx, incident, PIN, kind="summary")
        else:
            async with self.store.transaction() as tx:
                await self._queue(tx, incident, PIN, kind="summary")
        self._kick()

    async def _forget_summary(self, incident: Incident) -> Incident:
        async with self.store.transaction() as tx:
            await tx.execute("UPDATE incidents SET summary_ts = NULL WHERE id = ?", (incident.id,))
        return incident.evolve(summary_ts=None)

    async def pin(self, effect: Effect) -> None:
        incident = await self._incident(effect)
        if incident is None or incident.channel_id is None or incident.summary_ts is None:
            return
        await self.notifier.pin(MessageRef(incident.channel_id, incident.summary_ts))

    # -- updates, notices and cards ---------------------------------------------------------

    async def post_update(self, effect: Effect) -> None:
        """A status update in the incident channel; its copy in the announcement channel."""
        incident = await self._incident(effect)
        if incident is None:
            return
        # The update as it was when given, posted where the incident lives now.
        snapshot = storage.from_snapshot(effect.payload["snapshot"]).evolve(
            channel_id=incident.channel_id
        )
        home = incident_channel(incident, self.policy)
        if effect.payload.get("target") == "announce":
            copy_wanted = snapshot.severity in ANNOUNCE_COPY_SEVERITIES
            if not copy_wanted or home == self.policy.announce_channel:
                return  # no copy for this severity, or the update already went there
            channel = self.policy.announce_channel
        else:
            channel = home
        await self.notifier.post_update(snapshot, channel=channel, kind=effect.payload["kind"])

    async def notice(self, effect: Effect) -> None:
        """One line in the war room; without one, in the announcement's thread."""
        incident = await self._incident(effect)
        if incident is None:
            return
        thread_ts = None if incident.channel_id else incident.announce_ts
        await self.notifier.post_notice(
            incident,
            channel=incident_channel(incident, self.policy),
            kind=effect.payload.get("kind", ""),
            text=effect.payload.get("text", ""),
            said=effect.payload.get("said", ""),
            actor=effect.payload.get("actor", SYSTEM.user_id),
            thread_ts=thread_ts,
        )

    async def _superseded(self, effect: Effect) -> bool:
        """A later refresh of the same incident is queued: it will show the newer state."""
        async with self.store.transaction() as tx:
            return await outbox.later_undone(tx, effect)

    async def refresh(self, effect: Effect) -> None:
        """Edit the summary and the announcement in place; set the war room's topic."""
        if await self._superseded(effect):
            return
        incident = await self._incident(effect)
        if incident is None:
            return
        # The war room's own set-up has just posted (or edited) the summary.
        fresh_summary = effect.payload.get("kind") == "war_room"
        if incident.channel_id and incident.summary_ts and not fresh_summary:
            try:
                await self.notifier.update_card(
                    incident, MessageRef(incident.channel_id, incident.summary_ts)
                )
            except NotifierError as exc:
                if exc.error_code not in _CARD_GONE:
                    raise
                await self._forget_summary(incident)
                async with self.store.transaction() as tx:
                    await self._queue(tx, incident, SUMMARY, kind="summary_gone")
                self._kick()
        if incident.announce_ts:
            try:
                await self.notifier.update_card(
                    incident, MessageRef(self.policy.announce_channel, incident.announce_ts)
                )
            except NotifierError as exc:
                if exc.error_code not in _CARD_GONE:
                    raise
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

    # -- failures ---------------------------------------------------------------------------

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
        await self._record_failure(incident, step, target, error)
        if effect.kind == NOTICE:
            return  # a missed one-liner is on the timeline; not worth a message of its own
        # Where the war room itself is what failed, tell the declarer directly.
        in_channel = effect.kind in (INVITE, PIN, REFRESH)
        await self._report(incident, step, target, _code(error), in_channel=in_channel)

    async def _record_failure(
        self,
        incident: Incident,
        step: str,
        target: str | None,
        error: NotifierError | str,
        *,
        audited: bool = True,
    ) -> None:
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

    async def _report(
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
