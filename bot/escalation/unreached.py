"""A page that reaches nobody: a DM refused for the person (deactivated, not in the
workspace...), or user groups with nobody in them. Each is told in the incident channel in
words, once per person (or group) and page; when the whole level reached nobody, the next
level is paged at once (ManualEscalation.page_after_unreached), and when it was the last
level, the channel is told that no one else will be paged.
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
from bot.policy.paging import PROVIDERS

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
        await self._told(payload, incident, who, code, line, action, {"user": who})

    async def groups_empty(self, payload: Mapping[str, Any], incident: Incident) -> None:
        """A page naming user groups only, none of which has anyone in it to DM (or could be
        read: each is on the timeline already)."""
        level = int(payload["level"])
        groups = [str(target) for target in payload["targets"] if is_group(target)]
        named: list[refs.Part] = []
        for group in groups:
            named += [", ", refs.Group(group)] if named else [refs.Group(group)]
        line = refs.text(f"Level {level} page reached nobody: no one could be found in ", *named)
        key = ",".join(groups)
        await self._told(payload, incident, key, _NO_MEMBERS, line, "escalation.page_fanout", {})

    async def _told(
        self,
        payload: Mapping[str, Any],
        incident: Incident,
        key: str,
        code: str,
        line: refs.Rich,
        action: str,
        args: dict[str, Any],
    ) -> None:
        reminder_id = int(payload["reminder_id"])
        async with self.changes.begin() as change:
            # The row lock orders a level's failures, whichever process handles them: the
            # last one sees every other, so the next level is paged once.
            incident = await change.lock(incident.id)
            if not await escalations.add_unreached(change.tx, reminder_id, key, code, change.now):
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
                action=action,
                args={"reminder_id": reminder_id, **args},
                data={"reminder_id": reminder_id},
                outcome=f"failed: {code}",
                effects=[Queued(NOTICE, {**notice, **refs.notice_payload(line)})] if live else [],
            )
            if live and await self._nobody_reached(change, incident, payload, code):
                await self._next_level(change, incident, payload, notice)

    async def _nobody_reached(
        self, change: Change, incident: Incident, payload: Mapping[str, Any], code: str
    ) -> bool:
        targets = [str(target) for target in payload["targets"]]
        level = int(payload["level"])
        levels = self.policy.levels(incident.severity)
        if not 1 <= level <= len(levels) or set(levels[level - 1].notify) != set(targets):
            # A catch-up page after a raise of the severity names only some of the level
            # (the others were paged before); a level the rota has changed since: the timer.
            return False
        if code == _NO_MEMBERS:
            return True  # the groups are all the level names, and nobody is in them
        if any(t in PROVIDERS or is_group(t) for t in targets):
            # A user group or a paging service may have reached someone: the timer stays.
            return False
        # Partly reached: the next level keeps its timer.
        return set(targets) <= await escalations.unreached(change.tx, int(payload["reminder_id"]))

    async def _next_level(
        self,
        change: Change,
        incident: Incident,
        payload: Mapping[str, Any],
        notice: dict[str, str],
    ) -> None:
        if self.page_after is None or payload.get("anchor") is None:
            return
        reminder_id, level = int(payload["reminder_id"]), int(payload["level"])
        paged = await self.page_after(change, incident, level, float(payload["anchor"]))
        if paged != 0:
            return
        # The last level reached nobody: say so, or the room waits for a page that will
        # never come.
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
