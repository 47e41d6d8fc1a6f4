"""Slack's rate limits, enforced by the double the way Slack enforces them.

A call beyond its method's limit (per workspace) or, for chat.postMessage, its channel's
(about one a second, short bursts tolerated) is answered HTTP 429 with `Retry-After` in whole
seconds and `{"ok": false, "error": "ratelimited"}`, and does nothing. Off unless the double is
given `rate_limits=SlackLimits(...)`; the limits are those of `bot.slack.limits`, with the
full burst (the bot's pacer keeps half of it as margin).

An outage window (`SlackDouble.outage`) answers every call with 429s and 500s in turn for
a while: the bot must come out of it having delivered everything once, in order.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.slack.limits import POST_METHODS, Limit, SlackLimits

# Calls that are not Web API methods of the workspace: never limited here.
_UNLIMITED = frozenset({"apps.connections.open"})


class RateLimiter:
    """GCRA per key, as Slack keeps them: a call goes through or gets its Retry-After."""

    def __init__(self, limits: SlackLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._tat: dict[str, float] = {}

    def retry_after(self, method: str, params: Mapping[str, Any]) -> int | None:
        """None when the call may go (and it is counted); else whole seconds to wait."""
        if method in _UNLIMITED:
            return None
        keys: list[tuple[str, Limit]] = [("method:" + method, self.limits.method(method))]
        if method in POST_METHODS and params.get("channel"):
            keys.append(("channel:" + str(params["channel"]), self.limits.channel()))
        now = self._clock()
        wait = 0.0
        for name, limit in keys:
            free_from = self._tat.get(name, now) - limit.interval * (limit.burst - 1)
            wait = max(wait, free_from - now)
        if wait > 0:
            return max(1, math.ceil(wait))
        for name, limit in keys:
            self._tat[name] = max(self._tat.get(name, now), now) + limit.interval
        return None


@dataclass
class Outage:
    """Until `until` (monotonic), every call fails: 429 (Retry-After) and 500 in turn."""

    until: float
    retry_after: int = 1
    answered: int = 0

    def active(self) -> bool:
        return time.monotonic() < self.until

    def next_status(self) -> int:
        self.answered += 1
        return 429 if self.answered % 2 else 500
