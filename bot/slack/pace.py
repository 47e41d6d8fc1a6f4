"""Keep Slack's pace: every Web API call waits for its turn before it leaves.

Each call takes a slot under its method's limit (per workspace) and, for chat.postMessage,
under its channel's (about one a second). Slots are handed out by GCRA: each key keeps the
time its bucket is empty again (`tat`); a call goes at the latest `tat - burst window` of the
keys it needs (now at the earliest) and moves each key's `tat` one interval on. A key that did
not hold the call back is charged as if it went now: a channel's backlog must not push the
workspace-wide key into the future and hold back every other channel. Calls that reserve in
a given order leave in that order, so one channel's messages keep the order they were written.

A 429 still happens (another app on the same token, a limit lower than documented): the
call's keys are then held for Slack's Retry-After, so the calls behind it wait too, here and
in every other process sharing the pacer.

LocalPacer paces one process; RedisPacer shares the slots between replicas through one Lua
script, on Redis' own clock (replicas' clocks may differ). When Redis fails, pacing falls
back to the process' own slots: a Redis outage slows nothing down and stops nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from bot import metrics
from bot.outbox.budget import wait_outside_timeout
from bot.slack.limits import POST_METHODS, Limit, SlackLimits

log = logging.getLogger(__name__)

Key = tuple[str, Limit]


class Pacer(Protocol):
    """Hands out send times for Web API calls; shared by every caller of one workspace."""

    async def reserve(self, keys: Sequence[Key]) -> float:
        """Take a slot under every key; return how many seconds to wait before sending."""
        ...

    async def hold(self, keys: Sequence[Key], seconds: float) -> None:
        """Slack said wait (429 Retry-After): no call under these keys for `seconds`."""
        ...


class LocalPacer:
    """GCRA slots in this process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tat: dict[str, float] = {}

    async def reserve(self, keys: Sequence[Key]) -> float:
        return self.reserve_now(keys)

    def reserve_now(self, keys: Sequence[Key]) -> float:
        now = self._clock()
        send_at = now
        for name, limit in keys:
            tat = self._tat.get(name, now)
            send_at = max(send_at, tat - limit.interval * (limit.burst - 1))
        for name, limit in keys:
            self._tat[name] = max(self._tat.get(name, now), now) + limit.interval
        if len(self._tat) > 10_000:  # forget keys whose slots are all free again
            self._tat = {k: v for k, v in self._tat.items() if v > now}
        return send_at - now

    async def hold(self, keys: Sequence[Key], seconds: float) -> None:
        now = self._clock()
        for name, limit in keys:
            # The next slot frees up only after the hold, the burst spent.
            free_from = now + seconds + limit.interval * (limit.burst - 1)
            self._tat[name] = max(self._tat.get(name, now), free_from)


# KEYS: one per limit. ARGV: [mode, seconds, then interval and burst window per key].
# mode "reserve": the send time is the latest (tat - window) of all keys, at least now; each
# key's tat moves one interval past it. mode "hold": tat at least now + seconds + window.
# Times are Redis' (TIME), in seconds; keys expire once their slots are all free again.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local mode = ARGV[1]
local seconds = tonumber(ARGV[2])
if mode == 'hold' then
  for i, key in ipairs(KEYS) do
    local window = tonumber(ARGV[2 + 2 * i])
    local tat = tonumber(redis.call('GET', key) or now)
    local free_from = math.max(tat, now + seconds + window)
    redis.call('SET', key, tostring(free_from), 'PX', math.ceil((free_from - now) * 1000) + 1000)
  end
  return '0'
end
local send_at = now
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[2 + 2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  send_at = math.max(send_at, tat - window)
end
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[1 + 2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  local new_tat = math.max(tat, now) + interval
  redis.call('SET', key, tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
end
return tostring(send_at - now)
"""


class RedisPacer:
    """GCRA slots shared by every replica through Redis; the process' own when Redis fails."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "chatops:pace:",
        timeout: float = 1.0,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        import redis.asyncio as aioredis

        self._redis: Any = aioredis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True
        )
        # One hash tag: every key of a call in one slot of a Redis Cluster.
        self._prefix = prefix + "{slack}:"
        self._script = self._redis.register_script(_GCRA)
        self._fallback = LocalPacer()
        self._on_error = on_error

    async def reserve(self, keys: Sequence[Key]) -> float:
        try:
            wait = await self._script(keys=self._names(keys), args=["reserve", 0, *_args(keys)])
        except Exception as exc:  # RedisError, OSError, timeouts: pace alone meanwhile
            self._failed(exc)
            return self._fallback.reserve_now(keys)
        return max(0.0, float(wait))

    async def hold(self, keys: Sequence[Key], seconds: float) -> None:
        await self._fallback.hold(keys, seconds)
        try:
            await self._script(keys=self._names(keys), args=["hold", seconds, *_args(keys)])
        except Exception as exc:
            self._failed(exc)

    async def close(self) -> None:
        await self._redis.aclose()

    def _names(self, keys: Sequence[Key]) -> list[str]:
        return [self._prefix + name for name, _ in keys]

    def _failed(self, exc: Exception) -> None:
        log.warning("pacing on this process alone: Redis failed: %s", type(exc).__name__)
        metrics.REDIS_ERRORS.labels("pacer").inc()
        if self._on_error is not None:
            self._on_error(exc)


def _args(keys: Sequence[Key]) -> list[float]:
    args: list[float] = []
    for _, limit in keys:
        args += [limit.interval, limit.interval * (limit.burst - 1)]
    return args


def keys_for(method: str, params: dict[str, Any], limits: SlackLimits) -> list[Key]:
    """The limits a call counts against: its method's, and its channel's for a post."""
    keys: list[Key] = [("method:" + method, limits.method(method))]
    if method in POST_METHODS:
        channel = params.get("channel")
        if channel:
            keys.append(("channel:" + str(channel), limits.channel()))
    return keys


async def wait_turn(pacer: Pacer, keys: Sequence[Key]) -> None:
    """Wait for the call's slot (returns at once when it is free now). Under an outbox
    delivery the wait does not count against the handler's timeout; one too long for the
    delivery's claim raises a retryable NotifierError before the call (bot.outbox.budget)."""
    wait = await pacer.reserve(keys)
    metrics.SLACK_PACE_WAIT.observe(wait)
    await wait_outside_timeout(wait)
