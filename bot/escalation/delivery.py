"""Delivering escalation effects from the outbox, after the firing transaction committed.

Each effect is one Slack post (a page in the incident channel, one DM per paged person, a
breach warning, a reminder), so a retry repeats only that post. Handlers re-read the incident
first: a page that an acknowledgement overtook (a Slack outage, a slow outbox) is withdrawn.
A post that can never be delivered is put on the timeline and audited.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bot import refs
from bot.clock import utc_from_timestamp
from bot.errors import NotifierError
from bot.escalation import storage as escalations
from bot.escalation.extensions import OnCallSource
from bot.escalation.planner import ReminderKind
from bot.incidents import storage as incidents
from bot.incidents.changes import Change, IncidentChanges, Queued
from bot.incidents.effects import NOTICE
from bot.models import SYSTEM, Incident
from bot.notify import Notifier, Page
from bot.outbox import Effect, OutboxDispatcher
from bot.permissions import Permissions, is_group
from bot.policy import Policy
from bot.policy.paging import PROVIDERS
from bot.store import Store

# Outbox effect kinds: one Slack post each, so a retry repeats only that post.
PAGE_POST = "escalation.page"
PAGE_FANOUT = "escalation.page_fanout"
PAGE_DM = "escalation.page_dm"
BREACH = "escalation.breach"
REMIND = "escalation.remind"


def dm_lane(user_id: str) -> str:
    """The lane, within its incident's, of a page's DM to one person. The DM goes to another
    channel than the incident's messages: in the incident's lane it waited for them, and so
    for every message queued before them in a busy announcement channel (a burst of 20
    incidents held the last page DM a minute, at Slack's one message a second)."""
    return f"dm/{user_id}"


# The lane, within its incident's, of the fan-outs that read a page's user groups (and who is
# on call at a paging service): in the incident's lane they, and so their DMs, waited for
# every post queued before them in a busy announcement channel.
FANOUT_LANE = "fanout"

# Why a page's DM could never reach someone, in words: the channel reads these at 3 a.m.
# Only answers about the person: a failure of the bot's own (a revoked token, a missing
# scope) fails every DM alike, and must not page every level at once.
_UNREACHED_WORDS = {
    "user_disabled": "deactivated in Slack",
    "user_not_found": "not in this Slack workspace",
    "user_not_visible": "not visible to the bot (another workspace)",
    "cannot_dm_bot": "a bot, which cannot be paged by DM",
    "user_is_bot": "a bot, which cannot be paged by DM",
    "channel_not_found": "their direct messages could not be opened",
    "is_archived": "their direct messages could not be opened",
    "not_in_channel": "their direct messages could not be opened",
    "restricted_action": "Slack does not let the bot message them",
}


def unreached_words(code: str) -> str:
    """Why a page's DM never reached someone, in words, with Slack's code for the curious."""
    return f"{_UNREACHED_WORDS[code]} ({code})"


# Pages the level after one that reached nobody (ManualEscalation.page_after_unreached):
# (change, the locked incident, the level, its anchor) -> the level paged (0: none left).
PageAfterUnreached = Callable[[Change, Incident, int, float], Awaitable[int | None]]


class EscalationDelivery:
    """The outbox handlers of pages, breach warnings and reminders."""

    def __init__(
        self,
        *,
        store: Store,
        policy: Policy,
        notifier: Notifier,
        permissions: Permissions,
        changes: IncidentChanges,
    ) -> None:
        self.store = store
        self.policy = policy
        self.notifier = notifier
        self.permissions = permissions
        self.changes = changes
        # Who is on call now at the paging services: DMed with the first level (bot.paging).
        self.oncall: OnCallSource | None = None
        # Pages the next level at once when a level reached nobody (bot.escalation.service).
        self.page_after_unreached: PageAfterUnreached | None = None

    def register(self, dispatcher: OutboxDispatcher) -> None:
        """Say how the escalation effects are delivered."""
        dispatcher.register(PAGE_POST, self._deliver_page, on_failure=self._delivery_failed)
        # Apart from the Slack posts: it asks a paging service who is on call (bot.outbox).
        dispatcher.register(
            PAGE_FANOUT, self._fan_out, on_failure=self._delivery_failed, apart=True
        )
        dispatcher.register(PAGE_DM, self._deliver_dm, on_failure=self._delivery_failed)
        dispatcher.register(BREACH, self._deliver_breach, on_failure=self._delivery_failed)
        dispatcher.register(REMIND, self._deliver_reminder, on_failure=self._delivery_failed)

    async def _incident(self, effect: Effect) -> Incident | None:
        async with self.store.autocommit() as db:  # one read: no transaction of its own
            return await incidents.get(db, effect.incident or "")

    def _channel(self, incident: Incident) -> str:
        return incident.channel_id or self.policy.announce_channel

    @staticmethod
    def _page_of(payload: dict[str, Any]) -> Page:
        return Page(
            level=int(payload["level"]),
            recipients=tuple(payload["targets"]),
            waited=payload.get("waited"),
            by=payload.get("by"),
            reason=payload.get("reason") or "",
            since=payload.get("since") or "declared",
        )

    async def _page_incident(self, effect: Effect) -> Incident | None:
        """The incident of a page effect, or None when the page is withdrawn: acknowledged or
        resolved after the page fired, nobody needs it any more (a page queued behind a Slack
        outage must not ring someone after the ack), nor after a reopening, which started
        another escalation with pages of its own. A page made by hand is wanted all the same,
        acknowledged before or after it was made: someone asked for those people, and was
        told they are paged."""
        async with self.store.autocommit() as db:
            incident = await incidents.get(db, effect.incident or "")
            if incident is None or not incident.is_open:
                return None
            wanted = effect.payload.get("by") or effect.payload.get("acknowledged")
            if incident.acknowledged_at is not None and not wanted:
                return None
            anchor = effect.payload.get("anchor")
            # Pages queued before the anchor was recorded are kept; an incident unchanged since
            # its page was queued was not reopened since (a read fewer per page).
            if anchor is not None and effect.payload.get("version") != incident.version:
                state = await escalations.get_state(db, incident.id)
                if state is not None and state.anchor_at > utc_from_timestamp(anchor):
                    return None
        return incident

    async def _deliver_page(self, effect: Effect) -> None:
        incident = await self._page_incident(effect)
        if incident is None:
            return
        await self.notifier.page(
            incident, self._page_of(effect.payload), channel=self._channel(incident)
        )

    async def _fan_out(self, effect: Effect) -> None:
        """Expand the page's user groups and queue one DM per person, each once; then those
        the paging services have on call."""
        incident = await self._page_incident(effect)
        if incident is None:
            return
        users: list[str] = []
        unreadable: list[tuple[str, NotifierError]] = []
        unanswered: NotifierError | None = None  # a group Slack failed to list: tried again
        targets = effect.payload["targets"]
        for target in (target for target in targets if target not in PROVIDERS):
            try:
                members = await self.permissions.expand([target])
            except NotifierError as exc:
                if exc.retryable:
                    # The outbox tries again later; the people read so far are paged now,
                    # not held behind it (a rerun DMs nobody twice).
                    unanswered = unanswered or exc
                    continue
                unreadable.append((target, exc))  # the others are still paged
                continue
            users.extend(member for member in members if member not in users)
        # The level's own people are paged before the paging service is asked who is on call:
        # behind it they waited for its answer (10 s when it hangs).
        await self._queue_dms(
            incident, effect, users, unreadable=unreadable if unanswered is None else ()
        )
        providers = [target for target in targets if target in PROVIDERS]
        if providers and self.oncall is not None and int(effect.payload["level"]) == 1:
            # The first level also reaches whoever the paging service says is on call now;
            # when it cannot say, the level's Slack targets above are the fallback.
            await self._queue_dms(incident, effect, await self.oncall.slack_users(providers))
        if unanswered is not None:
            raise unanswered

    async def _queue_dms(
        self,
        incident: Incident,
        effect: Effect,
        users: Sequence[str],
        *,
        unreadable: Sequence[tuple[str, NotifierError]] = (),
    ) -> None:
        """Queue a page's DM to each of `users` not yet paged by it, and record the groups
        that could not be read, in one transaction."""
        if not users and not unreadable:
            return
        reminder_id = int(effect.payload["reminder_id"])
        async with self.changes.begin() as change:
            # A group that failed for good is recorded once: not on a rerun for another's sake.
            for group, error in unreadable:
                code = error.error_code or str(error)
                await change.record(
                    incident.id,
                    actor=SYSTEM.user_id,
                    kind="notification_failed",
                    text=refs.text("Page could not read ", refs.Group(group), f": {code}"),
                    action=PAGE_FANOUT,
                    args={"reminder_id": reminder_id, "group": group},
                    data={"reminder_id": reminder_id},
                    outcome=f"failed: {code}",
                )
            for user_id in users:
                # A rerun of this effect (crash before it was marked done) adds no one twice,
                # nor someone who is both a level's target and on call.
                if await escalations.add_recipient(change.tx, reminder_id, user_id, change.now):
                    payload = {**effect.payload, "user_id": user_id}
                    dm = Queued(PAGE_DM, payload, lane=dm_lane(user_id))
                    await change.enqueue(incident.id, [dm])

    async def _deliver_dm(self, effect: Effect) -> None:
        incident = await self._page_incident(effect)
        if incident is None:
            return
        await self.notifier.page_user(
            incident,
            self._page_of(effect.payload),
            user_id=effect.payload["user_id"],
            channel=self._channel(incident),
        )

    async def _deliver_breach(self, effect: Effect) -> None:
        incident = await self._incident(effect)
        if incident is None:
            return
        await self.notifier.warn_breach(
            incident,
            channel=self._channel(incident),
            target=effect.payload["target"],
            within=effect.payload["within"],
            due_at=utc_from_timestamp(effect.payload["due_at"]),
            mention=incident.lead,
        )

    async def _deliver_reminder(self, effect: Effect) -> None:
        incident = await self._incident(effect)
        if incident is None:
            return
        kind = effect.payload["kind"]
        if kind == ReminderKind.UPDATE_DUE and not incident.is_open:
            return
        due_at = utc_from_timestamp(effect.payload["due_at"])
        within = effect.payload.get("within") or ""
        user_id = effect.payload.get("user_id")
        if user_id:
            await self.notifier.remind(
                incident, user_id=user_id, kind=kind, due_at=due_at, within=within
            )
            return
        # Nobody leads it (the bot declared it): the channel, and the first level in it.
        await self.notifier.remind_in_channel(
            incident,
            channel=self._channel(incident),
            mentions=tuple(effect.payload.get("mentions") or ()),
            kind=kind,
            due_at=due_at,
            within=within,
        )

    async def _delivery_failed(self, effect: Effect, error: NotifierError) -> None:
        """A page or reminder that can never be delivered: on the timeline and audited."""
        incident = await self._incident(effect)
        if incident is None:
            return
        code = error.error_code or str(error)
        who = effect.payload.get("user_id")
        if effect.kind == PAGE_DM and who and code in _UNREACHED_WORDS:
            await self._unreached(effect, incident, str(who), code)
            return
        to_whom = refs.text(" to ", refs.Person(who)) if who else refs.text()
        here = to_whom or refs.text(" in the incident channel")
        what: refs.Rich = {
            PAGE_POST: refs.text("Page post"),
            PAGE_FANOUT: refs.text("Page (reading user groups)"),
            PAGE_DM: refs.text("Page DM", *to_whom),
            BREACH: refs.text("Breach warning"),
            REMIND: refs.text("Reminder", *here),
        }.get(effect.kind, refs.text(effect.kind))
        async with self.changes.begin() as change:
            await change.record(
                incident.id,
                actor=SYSTEM.user_id,
                kind="notification_failed",
                text=refs.text(*what, f" failed: {code}"),
                action=effect.kind,
                args={"reminder_id": effect.payload.get("reminder_id"), "user": who},
                data={"reminder_id": effect.payload.get("reminder_id")},
                outcome=f"failed: {code}",
            )

    async def _unreached(self, effect: Effect, incident: Incident, who: str, code: str) -> None:
        """A page's DM that failed for good: on the timeline, told in the incident channel
        (once per person and page, in words), and when every person the level names is
        unreached, the next level is paged now rather than at its timer."""
        payload = effect.payload
        reminder_id, level = int(payload["reminder_id"]), int(payload["level"])
        line = refs.text(
            f"Level {level} page could not reach ", refs.Person(who), f": {unreached_words(code)}"
        )
        async with self.changes.begin() as change:
            # The row lock orders a level's failures, whichever process handles them: the
            # last one sees every other, so the next level is paged once.
            incident = await change.lock(incident.id)
            if not await escalations.add_unreached(change.tx, reminder_id, who, code, change.now):
                return  # a rerun of this handler: recorded and told already
            # An acknowledgement (or a resolution) stops it as it stops the page itself.
            live = incident.is_open and (
                incident.acknowledged_at is None or bool(payload.get("by"))
            )
            notice = {"kind": "page_unreached", "actor": SYSTEM.user_id}
            await change.record(
                incident.id,
                actor=SYSTEM.user_id,
                kind="notification_failed",
                text=line,
                action=PAGE_DM,
                args={"reminder_id": reminder_id, "user": who},
                data={"reminder_id": reminder_id},
                outcome=f"failed: {code}",
                effects=[Queued(NOTICE, {**notice, **refs.notice_payload(line)})] if live else [],
            )
            targets = [str(target) for target in payload["targets"]]
            if not live or any(t in PROVIDERS or is_group(t) for t in targets):
                # A user group or a paging service may have reached someone: the timer stays.
                return
            levels = self.policy.levels(incident.severity)
            if not 1 <= level <= len(levels) or set(levels[level - 1].notify) != set(targets):
                # A catch-up page after a raise of the severity names only some of the level
                # (the others were paged before); a level the rota has changed since: the timer.
                return
            if not set(targets) <= await escalations.unreached(change.tx, reminder_id):
                return  # partly reached: the next level keeps its timer
            if self.page_after_unreached is None or payload.get("anchor") is None:
                return
            paged = await self.page_after_unreached(
                change, incident, level, float(payload["anchor"])
            )
            if paged == 0:
                # The last level reached nobody: say so, or the room waits for a page that
                # will never come.
                last = refs.text(
                    f"Level {level}, the last escalation level of {incident.severity}, reached"
                    " nobody by DM: no one else will be paged."
                )
                await change.record(
                    incident.id,
                    actor=SYSTEM.user_id,
                    kind="notification_failed",
                    text=last,
                    action="escalation.unreached",
                    args={"reminder_id": reminder_id, "level": level},
                    data={"reminder_id": reminder_id},
                    outcome="failed: nobody reached",
                    effects=[Queued(NOTICE, {**notice, **refs.notice_payload(last)})],
                )
