"""The war room's set-up, delivered from the outbox: create the channel (or adopt the one an
earlier attempt made), invite the roster, post and pin the summary card."""

from __future__ import annotations

import logging
from datetime import timedelta

from bot import audit, refs
from bot.audit import AuditRecord
from bot.errors import NotifierError
from bot.incidents import journal, storage
from bot.incidents.effects import INVITE, PIN, REFRESH, SUMMARY
from bot.incidents.failures import FailureReports
from bot.incidents.flow_steps import FlowSteps, edit_card
from bot.incidents.naming import MAX_ATTEMPTS, war_room_name
from bot.models import SYSTEM, Incident
from bot.notify import MessageRef, Notifier
from bot.outbox import Effect, EffectHandler
from bot.permissions import Permissions
from bot.policy import Policy

log = logging.getLogger(__name__)

# Slack's clock against ours, when telling whether a channel is younger than its incident.
ADOPT_CLOCK_SKEW = timedelta(minutes=10)
# How many times the war room is tried while Slack keeps failing to create it (5xx, timeouts;
# rate limits do not count): the outbox's back-off between them (2, 4, 8, 16, 32 s) makes it
# about a minute of failures, however long the room waited for its turn first. Then its
# creation fails for good, the pages that wait for it go out naming the announcement
# channel, and `/incident warroom` tries again. Else nobody was paged for hours. The same
# holds for the set-up steps that follow it (invites, summary card, pin, topic): the pages
# queued at the declaration wait behind them too.
CREATE_ATTEMPTS = 6
# Slack's pace, not an outage: a 429 ("ratelimited"), or chat.postMessage's own limit.
_PACE = {"ratelimited", "rate_limited"}


def given_up(effect: Effect, exc: NotifierError) -> NotifierError | None:
    """The failure for good that ends a war-room set-up step Slack has kept failing for
    CREATE_ATTEMPTS tries (an outage, not a rate limit), or None: try it again."""
    outage = exc.retryable and exc.error_code not in _PACE
    if not outage or effect.attempts < CREATE_ATTEMPTS:
        return None
    code = exc.error_code or "slack_unreachable"  # a timeout, a dropped connection
    return NotifierError(str(exc), error_code=code, retryable=False)


def set_up_step(handler: EffectHandler) -> EffectHandler:
    """`handler`, a war-room set-up step, given up after a minute of Slack failing it."""

    async def step(effect: Effect) -> None:
        try:
            await handler(effect)
        except NotifierError as exc:
            if (final := given_up(effect, exc)) is None:
                raise
            raise final from exc

    return step


class WarRoom:
    """The war-room effect handlers: the room, its invites, its summary card and pin."""

    def __init__(
        self,
        *,
        steps: FlowSteps,
        policy: Policy,
        notifier: Notifier,
        permissions: Permissions | None,
        failures: FailureReports,
    ) -> None:
        self.steps = steps
        self.store = steps.store
        self.clock = steps.clock
        self.policy = policy
        self.notifier = notifier
        self.permissions = permissions
        self.failures = failures

    async def war_room(self, effect: Effect) -> None:
        """Create the war room (unless it exists), then queue invites, summary and topic."""
        incident = await self.steps.incident(effect)
        if incident is None or not incident.is_open:
            return  # resolved before Slack could be reached: no room needed any more
        if incident.channel_id is not None:
            async with self.store.transaction() as tx:
                await self.steps.queue(tx, incident, INVITE, SUMMARY, REFRESH, kind="war_room")
            self.steps.kick()
            return
        try:
            channel_id, name = await self._create_channel(incident)
        except NotifierError as exc:
            # A rate limit is Slack working at its pace (a burst of war rooms): it is waited
            # out. An outage is not, past CREATE_ATTEMPTS.
            if (final := given_up(effect, exc)) is None:
                raise
            raise final from exc
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
                text=refs.text("War room ", refs.Channel(channel_id), " opened"),
                action="incident.war_room",
                args={"channel": channel_id, "name": name},
                data={"channel": channel_id, "name": name},
            )
            await self.steps.queue(tx, incident, INVITE, SUMMARY, REFRESH, kind="war_room")
        self.steps.kick()

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
                await self.failures.record(incident, "expand_group", target, exc)
                continue
            users.extend(members)
        return list(dict.fromkeys(users))

    async def _group_members(self, group_id: str) -> list[str]:
        if self.permissions is None:
            return []
        return await self.permissions.expand([group_id])

    async def invite(self, effect: Effect) -> None:
        incident = await self.steps.incident(effect)
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
            await self.failures.record(incident, "invite", user_id, error, audited=False)
            await self.failures.report(incident, "invite", user_id, error, in_channel=True)

    async def summary(self, effect: Effect) -> None:
        """Post the summary card in the war room (or edit it when it exists), then pin it."""
        found = await self.steps.incident_with_escalation(effect)
        if found is None:
            return
        incident, escalation = found
        room = incident.channel_id
        if room is None:
            return
        if incident.summary_ts is not None:
            ref = MessageRef(room, incident.summary_ts)
            if not await edit_card(self.notifier, incident, ref, escalation):
                incident = await self.forget_summary(incident)
        if incident.summary_ts is None:
            ref = await self.notifier.post_summary(incident, channel=room, escalation=escalation)
            async with self.store.transaction() as tx:
                await tx.execute(
                    "UPDATE incidents SET summary_ts = ? WHERE id = ?", (ref.ts, incident.id)
                )
                await self.steps.queue(tx, incident, PIN, kind="summary")
        else:
            async with self.store.transaction() as tx:
                await self.steps.queue(tx, incident, PIN, kind="summary")
        self.steps.kick()

    async def forget_summary(self, incident: Incident) -> Incident:
        """Forget a summary card that is gone, so the next summary posts a new one."""
        async with self.store.transaction() as tx:
            await tx.execute("UPDATE incidents SET summary_ts = NULL WHERE id = ?", (incident.id,))
        return incident.evolve(summary_ts=None)

    async def pin(self, effect: Effect) -> None:
        incident = await self.steps.incident(effect)
        if incident is None or incident.channel_id is None or incident.summary_ts is None:
            return
        await self.notifier.pin(MessageRef(incident.channel_id, incident.summary_ts))
