"""A page that reaches nobody: a DM refused for the person (deactivated, not in the
workspace...), user groups with nobody in them, or a paging service that refused the page for
good (its key refused). Each is told in the incident channel in words, once per person (or
groups, or service) and page; when the whole level reached nobody, the next level is paged at
once (ManualEscalation.page_after_unreached), and when it was the last level, the channel is
told that no one else will be paged.

Whether the whole level reached nobody is decided under the incident's row lock by each of
the page's last events (a DM refused, a paging service's refusal, the end of its fan-out), so
whichever comes last, in whichever process, sees all the others and pages the next level once:
- a page naming people only: every one of them was refused;
- a page naming user groups or paging services: its fan-out ended (every group read, its DMs
  queued: page_fanouts), everyone it queued a DM to (the people named, the groups' members
  each once, whoever a paging service has on call: page_recipients) was refused, and every
  paging service it names refused the page for good.
A failure of the bot's own (a revoked token, a missing scope) is none of these: it fails every
DM alike, and must not page every level at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from bot import refs
from bot.escalation import storage as escalations
from bot.incidents.changes import Change, IncidentChanges, Queued
from bot.incidents.effects import NOTICE
from bot.models import SYSTEM, Incident
from bot.permissions import is_group
from bot.policy import Policy
from bot.policy.paging import PROVIDER_NAMES, PROVIDERS

# Why a page's DM could never reach someone, in words: the channel reads these at 3 a.m.
# Only answers about the person: a failure of the bot's own (a revoked token, a missing
# scope) fails every DM alike, and must not page every level at once.
UNREACHED_WORDS = {
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
_NO_MEMBERS = "no_members"
# Slack has no user with an on-call person's e-mail (users.lookupByEmail).
UNFOUND = "users_not_found"
# A user group Slack says does not exist (any more): nobody is in it. Any other refusal to
# read one (a missing scope, a revoked token) is the bot's own, and says nothing of who is in it.
GROUP_GONE = frozenset({"no_such_subteam"})
_NOTICE = {"kind": "page_unreached", "actor": SYSTEM.user_id}
_FANOUT = "escalation.page_fanout"  # bot.escalation.delivery.PAGE_FANOUT
# The audit action of a paging service's refusal (bot.paging.delivery.TRIGGER).
PROVIDER_ACTION = "paging.trigger"

# Pages the level after one that reached nobody (ManualEscalation.page_after_unreached):
# (change, the locked incident, the level, its anchor) -> the level paged (0: none left).
PageAfterUnreached = Callable[[Change, Incident, int, float], Awaitable[int | None]]


def unreached_words(code: str) -> str:
    """Why a page's DM never reached someone, in words, with Slack's code for the curious."""
    return f"{UNREACHED_WORDS[code]} ({code})"


class UnreachedPages:
    """Tells who a page could not reach, and pages the next level when nobody was."""

    def __init__(self, *, policy: Policy, changes: IncidentChanges) -> None:
        self.policy = policy
        self.changes = changes
        # Set by bot.escalation.service; None: told only.
        self.page_after: PageAfterUnreached | None = None

    async def dm_failed(
        self, payload: Mapping[str, Any], incident: Incident, who: str, code: str, action: str
    ) -> None:
        """A page's DM to `who` that Slack refused for good for the person (`code`)."""
        level = int(payload["level"])
        line = refs.text(
            f"Level {level} page could not reach ", refs.Person(who), f": {unreached_words(code)}"
        )
        await self._told(payload, incident.id, who, code, line, action, {"user": who})

    async def provider_refused(
        self,
        page: Mapping[str, Any],
        incident_id: str,
        provider: str,
        code: str,
        *,
        told: bool = False,
    ) -> None:
        """A paging service that refused a level's page for good for a reason that means it
        paged nobody (its key refused: bot.paging). NotFound when the incident is gone.
        `told`: the channel heard this refusal at the reopening that started this escalation
        (its own trigger): on the timeline and counted as unreached, not told twice."""
        level = int(page["level"])
        name = PROVIDER_NAMES.get(provider, provider)
        line = refs.text(
            f"Level {level} page could not reach {name}: it refused the page ({code});"
            " check the `paging:` settings"
        )
        await self._told(
            page, incident_id, provider, code, line, PROVIDER_ACTION, {}, notice=not told
        )

    async def oncall_unreached(
        self, payload: Mapping[str, Any], incident_id: str, provider: str, email: str, code: str
    ) -> None:
        """Someone a paging service has on call whom the page's DM cannot reach: Slack has no
        user with that e-mail (`users_not_found`), or refused to look it up for a reason of
        the bot's own (a missing scope). Told once per page; the service still pages them, so
        the level is not counted unreached for it."""
        name = PROVIDER_NAMES.get(provider, provider)
        why = (
            "no Slack user has that e-mail" if code == UNFOUND else "Slack refused to look them up"
        )
        line = refs.text(
            f"Level {int(payload['level'])} page could not DM {email}, on call at {name}:"
            f" {why} ({code}); {name} pages them"
        )
        reminder_id = int(payload["reminder_id"])
        async with self.changes.begin() as change:
            incident = await change.lock(incident_id)
            if not await escalations.add_unreached(change.tx, reminder_id, email, code, change.now):
                return  # a rerun of the fan-out: told already
            live = _live(incident, payload)
            args = {"provider": provider, "email": email}
            await self._record(change, incident, payload, code, line, _FANOUT, args, live)

    async def fan_out_finished(
        self, change: Change, incident: Incident, payload: Mapping[str, Any], *, anyone: bool
    ) -> None:
        """In the transaction that queued a page's last fan-out DMs, every user group read
        (or gone), the incident locked: record it; tell when the level names only groups and
        nobody was in them (`anyone` False: a group that is gone is on the timeline already);
        page the next level when everyone the page was for was refused already."""
        if not await escalations.finish_fanout(change.tx, int(payload["reminder_id"]), change.now):
            return  # a rerun of the fan-out: decided already
        live = _live(incident, payload)
        groups = [str(target) for target in payload["targets"] if is_group(target)]
        if not anyone and len(groups) == len(payload["targets"]):
            named: list[refs.Part] = []
            for group in groups:
                named += [", ", refs.Group(group)] if named else [refs.Group(group)]
            line = refs.text(
                f"Level {int(payload['level'])} page reached nobody: no one could be found in ",
                *named,
            )
            await self._record(change, incident, payload, _NO_MEMBERS, line, _FANOUT, {}, live)
        if live and await self._nobody_reached(change, incident, payload):
            await self._next_level(change, incident, payload)

    async def _told(
        self,
        payload: Mapping[str, Any],
        incident_id: str,
        key: str,
        code: str,
        line: refs.Rich,
        action: str,
        args: dict[str, Any],
        *,
        notice: bool = True,
    ) -> None:
        reminder_id = int(payload["reminder_id"])
        async with self.changes.begin() as change:
            # The row lock orders a level's failures, whichever process handles them: the
            # last one sees every other, so the next level is paged once.
            incident = await change.lock(incident_id)
            if not await escalations.add_unreached(change.tx, reminder_id, key, code, change.now):
                return  # a rerun of this handler: recorded and told already
            live = _live(incident, payload)
            await self._record(change, incident, payload, code, line, action, args, live and notice)
            if live and await self._nobody_reached(change, incident, payload):
                await self._next_level(change, incident, payload)

    async def _record(
        self,
        change: Change,
        incident: Incident,
        payload: Mapping[str, Any],
        code: str,
        line: refs.Rich,
        action: str,
        args: dict[str, Any],
        live: bool,
    ) -> None:
        """On the timeline and audited; in the channel while the page is live."""
        reminder_id = int(payload["reminder_id"])
        await change.record(
            incident.id,
            actor=SYSTEM.user_id,
            kind="notification_failed",
            text=line,
            action=action,
            args={"reminder_id": reminder_id, **args},
            data={"reminder_id": reminder_id},
            outcome=f"failed: {code}",
            effects=[Queued(NOTICE, {**_NOTICE, **refs.notice_payload(line)})] if live else [],
        )

    async def _nobody_reached(
        self, change: Change, incident: Incident, payload: Mapping[str, Any]
    ) -> bool:
        """Whether everyone and everything the page was for could not be reached (see the
        module docstring); the caller holds the incident's row lock."""
        targets = [str(target) for target in payload["targets"]]
        level = int(payload["level"])
        levels = self.policy.levels(incident.severity)
        if not 1 <= level <= len(levels) or set(levels[level - 1].notify) != set(targets):
            # A catch-up page after a raise of the severity names only some of the level
            # (the others were paged before); a level the rota has changed since: the timer.
            return False
        reminder_id = int(payload["reminder_id"])
        unreached = await escalations.unreached(change.tx, reminder_id)
        if any(target in PROVIDERS and target not in unreached for target in targets):
            return False  # a paging service paged someone (or has not answered yet)
        if not any(target in PROVIDERS or is_group(target) for target in targets):
            # People only, each DMed with the page. Partly reached: the timer stays.
            return set(targets) <= unreached
        if not await escalations.fanout_finished(change.tx, reminder_id):
            return False  # the fan-out may still queue DMs (a group Slack failed to list)
        # Each person DMed once, however many of the level's groups they are in.
        return await escalations.recipients(change.tx, reminder_id) <= unreached

    async def _next_level(
        self, change: Change, incident: Incident, payload: Mapping[str, Any]
    ) -> None:
        if self.page_after is None or payload.get("anchor") is None:
            return
        reminder_id, level = int(payload["reminder_id"]), int(payload["level"])
        paged = await self.page_after(change, incident, level, float(payload["anchor"]))
        if paged != 0:
            return
        # The last level reached nobody: say so, or the room waits for a page that will
        # never come.
        how = "" if any(t in PROVIDERS for t in payload["targets"]) else " by DM"
        last = refs.text(
            f"Level {level}, the last escalation level of {incident.severity}, reached"
            f" nobody{how}: no one else will be paged."
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
            effects=[Queued(NOTICE, {**_NOTICE, **refs.notice_payload(last)})],
        )


def _live(incident: Incident, payload: Mapping[str, Any]) -> bool:
    """Whether the page still stands: an acknowledgement (or a resolution) stops this as it
    stops the page itself, unless the page was made by hand."""
    return incident.is_open and (incident.acknowledged_at is None or bool(payload.get("by")))
