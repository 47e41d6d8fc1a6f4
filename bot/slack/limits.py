"""Slack's documented Web API rate limits: what the pacer keeps and what the double enforces.

From api.slack.com/apis/rate-limits and each method's reference page ("Rate limits: Tier N").
Limits apply per method, per workspace, per app: Tier 1 about 1 a minute, Tier 2 about 20,
Tier 3 about 50, Tier 4 about 100, short bursts tolerated. chat.postMessage is special: about
one message a second per channel (short bursts tolerated) under a workspace-wide limit of
several hundred a minute.

`scale` runs Slack's clock faster (tests and benchmarks: 10 means ten times the documented
rates, the same bursts), so a test of 50 declarations does not take a minute; 1 is Slack.
"""

from __future__ import annotations

from dataclasses import dataclass

# Requests a minute for each tier.
TIER_PER_MINUTE: dict[int, float] = {1: 1.0, 2: 20.0, 3: 50.0, 4: 100.0}

# Each method the bot (or Bolt for it) calls, with the tier its reference page names.
METHOD_TIERS: dict[str, int] = {
    "apps.connections.open": 1,
    "auth.test": 4,  # "special": thousands an hour
    "chat.delete": 3,
    "chat.getPermalink": 4,  # "special", generous
    "chat.postEphemeral": 4,
    "chat.scheduleMessage": 3,
    "chat.update": 3,
    "conversations.create": 2,
    "conversations.history": 3,
    "conversations.info": 3,
    "conversations.invite": 3,
    "conversations.join": 3,
    "conversations.list": 2,
    "conversations.members": 4,
    "conversations.open": 3,
    "conversations.replies": 3,
    "conversations.setPurpose": 2,
    "conversations.setTopic": 2,
    "files.completeUploadExternal": 4,
    "files.getUploadURLExternal": 4,
    "pins.add": 2,
    "pins.list": 2,
    "pins.remove": 2,
    "reactions.add": 3,
    "usergroups.users.list": 2,
    "users.info": 4,
    "users.lookupByEmail": 3,
    "views.open": 4,
    "views.publish": 4,
    "views.push": 4,
    "views.update": 4,
}
DEFAULT_TIER = 3  # a method not listed: the common middle

# chat.postMessage: one a second per channel, and a workspace-wide ceiling.
POST_METHODS = frozenset({"chat.postMessage", "chat.scheduleMessage"})
POST_PER_CHANNEL_PER_SECOND = 1.0
POST_PER_WORKSPACE_PER_MINUTE = 600.0


@dataclass(frozen=True, slots=True)
class Limit:
    """`per_second` sustained, up to `burst` at once after a quiet spell."""

    per_second: float
    burst: int

    @property
    def interval(self) -> float:
        return 1.0 / self.per_second


@dataclass(frozen=True, slots=True)
class SlackLimits:
    """The limits of one workspace, with bursts of `bursts` seconds' worth (at least 1-3).

    Slack tolerates bursts without saying how large; the double allows `burst_seconds`
    worth (and 3 messages in a channel), the pacer spends less of it (`for_pacer`), so the
    bot stays under what the double, and Slack, refuse.
    """

    scale: float = 1.0
    burst_seconds: float = 6.0
    channel_burst: int = 3

    def method(self, method: str) -> Limit:
        if method in POST_METHODS:
            per_minute = POST_PER_WORKSPACE_PER_MINUTE
        else:
            per_minute = TIER_PER_MINUTE[METHOD_TIERS.get(method, DEFAULT_TIER)]
        per_second = per_minute / 60.0
        return Limit(per_second * self.scale, max(1, int(per_second * self.burst_seconds)))

    def channel(self) -> Limit:
        return Limit(POST_PER_CHANNEL_PER_SECOND * self.scale, self.channel_burst)

    def for_pacer(self) -> SlackLimits:
        """The same rates with half the burst: margin for requests bunched up in transit."""
        return SlackLimits(
            scale=self.scale,
            burst_seconds=self.burst_seconds / 2,
            channel_burst=max(1, self.channel_burst - 1),
        )


def tier_of(method: str) -> int | None:
    """The tier of a method, or None for the special chat.postMessage limit."""
    if method in POST_METHODS:
        return None
    return METHOD_TIERS.get(method, DEFAULT_TIER)
