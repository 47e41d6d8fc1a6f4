"""Delivering escalation effects from the outbox, after the firing transaction committed.

Each effect is one Slack post (a page in the incident channel, one DM per paged person, a
breach warning, a reminder), so a retry repeats only that post. Handlers re-read the incident
first: a page that an acknowledgement overtook (a Slack outage, a slow outbox) is withdrawn.
A post that can never be delivered is put on the timeline and audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot import refs
from bot.clock import utc_from_timestamp
from bot.errors import NotifierError
from bot.escalation import storage as escalations
from bot.escalation.extensions import OnCallSource
from bot.escalation.planner import ReminderKind
from bot.escalation.unreached import GROUP_GONE, UNFOUND, UNREACHED_WORDS, UnreachedPages
from bot.incidents import storage as incidents
from bot.incidents.changes import IncidentChanges, Queued
from bot.models import SYSTEM, Incident
from bot.notify import Notifier, Page
from bot.outbox import Effect, OutboxDispatcher
from bot.permissions import Permissions
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
        # A page that reached someone nobody: told, and the next level paged at once.
        self.unreached = UnreachedPages(policy=policy, changes=changes)

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
        providers = [target for target in targets if target in PROVIDERS]
        level = int(effect.payload["level"])
        # A drill asks the paging services nothing, not even who is on call, unless the
        # policy lets drills page them: its people are the level's own Slack targets.
        oncall = (
            bool(providers)
            and self.oncall is not None
            and level == 1
            and (not incident.drill or self.policy.drills.page_providers)
        )
        # Ended when every group was read, or is gone (nobody is in it): whether the level
        # reached nobody can then be told from its DMs. A group the bot failed to read for a
        # reason of its own (a missing scope) leaves it unknown: the level keeps its timer.
        ended = unanswered is None and all(e.error_code in GROUP_GONE for _, e in unreadable)
        # The level's own people are paged before the paging service is asked who is on call:
        # behind it they waited for its answer (10 s when it hangs).
        await self._queue_dms(
            incident,
            effect,
            users,
            unreadable=unreadable if unanswered is None else (),
            ended=ended and not oncall,
            anyone=bool(users),
        )
        if oncall and self.oncall is not None:
            # The first level also reaches whoever the paging service says is on call now;
            # when it cannot say, the level's Slack targets above are the fallback.
            # Each service is asked at once, and whoever it has on call is DMed as soon as it
            # answers: asked in turn, one that hung held up the others' people (and two took
            # the handler's whole 20 s).
            retry: NotifierError | None = None
            async for found in self.oncall.as_answered(providers):
                # Slack failed to look someone up (a rate limit, an outage): the outbox runs
                # the fan-out again (those found are DMed now, nobody twice), not their DM
                # dropped.
                retry = retry or next((e for _, _, e in found.failed if e.retryable), None)
                await self._queue_dms(
                    incident, effect, found.users, ended=False, anyone=bool(users)
                )
                for provider, email in found.unfound:
                    await self.unreached.oncall_unreached(
                        effect.payload, incident.id, provider, email, UNFOUND
                    )
                for provider, email, error in found.failed:
                    if not error.retryable:  # the bot's own (a missing scope): no retry mends
                        code = error.error_code or "error"
                        await self.unreached.oncall_unreached(
                            effect.payload, incident.id, provider, email, code
                        )
            if ended and retry is None:
                # Every service answered (or gave up): the fan-out's end, recorded once.
                await self._queue_dms(incident, effect, (), ended=True, anyone=bool(users))
            unanswered = unanswered or retry
        if unanswered is not None:
            raise unanswered

    async def _queue_dms(
        self,
        incident: Incident,
        effect: Effect,
        users: Sequence[str],
        *,
        unreadable: Sequence[tuple[str, NotifierError]] = (),
        ended: bool,
        anyone: bool,
    ) -> None:
        """Queue a page's DM to each of `users` not yet paged by it, and record the groups
        that could not be read, in one transaction; when the fan-out `ended` with these, that
        too (UnreachedPages.fan_out_finished: `anyone` says whether its groups had anyone)."""
        if not users and not unreadable and not ended:
            return
        reminder_id = int(effect.payload["reminder_id"])
        async with self.changes.begin() as change:
            # The incident's row lock, as every handler of the page's refusals takes it: the
            # last of them sees these DMs and the fan-out's end.
            locked = await change.lock(incident.id) if ended else None
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
            if locked is not None:
                await self.unreached.fan_out_finished(change, locked, effect.payload, anyone=anyone)

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
        if effect.kind == PAGE_DM and who and code in UNREACHED_WORDS:
            await self.unreached.dm_failed(effect.payload, incident, str(who), code, PAGE_DM)
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
