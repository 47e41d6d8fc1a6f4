"""Scripted faults of the Slack double: errors, 429s, HTTP errors, lost replies, outages."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.console.workspace.limits import Outage, RateLimiter
from bot.console.workspace.recording import RecordedCall
from bot.console.workspace.state import WorkspaceState


@dataclass
class Injection:
    kind: str  # "fail" | "rate_limit" | "http_error" | "lose_reply" | "hold_reply"
    remaining: int
    error: str = ""
    retry_after: int = 1
    status: int = 500
    body: str | None = None
    content_type: str = "text/plain"
    channel: str | None = None  # only calls about this channel (ID or name); None: any
    gate: asyncio.Event = field(default_factory=asyncio.Event)  # hold_reply: answer once set


class Faults:
    """SlackDouble's failure injection, and the rate limits it enforces when asked to."""

    state: WorkspaceState
    calls: list[RecordedCall]
    rate_limiter: RateLimiter | None
    _injections: dict[str, deque[Injection]]
    _outage: Outage | None

    # Faults are scripted per method, optionally for one channel (`channel`: an ID or a
    # name, matched against the call's `channel` argument), and used up in the order given.

    def fail(
        self,
        method: str,
        error: str = "channel_not_found",
        times: int = 1,
        *,
        channel: str | None = None,
    ) -> None:
        """Answer the next `times` calls to `method` with `{"ok": false, "error": error}`."""
        self._injections[method].append(Injection("fail", times, error=error, channel=channel))

    def rate_limit(
        self, method: str, retry_after: int = 1, times: int = 1, *, channel: str | None = None
    ) -> None:
        """Answer the next `times` calls with HTTP 429, `Retry-After`, error `ratelimited`."""
        self._injections[method].append(
            Injection("rate_limit", times, retry_after=retry_after, channel=channel)
        )

    def http_error(
        self,
        method: str,
        status: int = 500,
        times: int = 1,
        body: str | None = None,
        *,
        content_type: str = "text/plain",
        channel: str | None = None,
    ) -> None:
        """Answer the next `times` calls with HTTP `status`: a JSON error body, or `body` as
        it is, sent as `content_type` (a proxy's text or HTML page, or broken JSON)."""
        self._injections[method].append(
            Injection(
                "http_error",
                times,
                status=status,
                body=body,
                content_type=content_type,
                channel=channel,
            )
        )

    def lose_reply(self, method: str, times: int = 1, *, channel: str | None = None) -> None:
        """Carry out the next `times` calls to `method`, then close the connection instead
        of answering: the caller cannot tell whether the call happened (a reply lost to a
        network fault or a timeout)."""
        self._injections[method].append(Injection("lose_reply", times, channel=channel))

    def hold_reply(
        self, method: str, times: int = 1, *, channel: str | None = None
    ) -> asyncio.Event:
        """Carry out the next `times` calls to `method` (recorded at once), then answer them
        only once the returned event is set: Slack slow to answer a call it has made."""
        injection = Injection("hold_reply", times, channel=channel)
        self._injections[method].append(injection)
        return injection.gate

    def outage(self, seconds: float, *, retry_after: int = 1) -> None:
        """For the next `seconds`, answer every Web API call with HTTP 429 (Retry-After) and
        HTTP 500 in turn: Slack down, then up again by itself."""
        self._outage = Outage(until=time.monotonic() + seconds, retry_after=retry_after)

    @property
    def rate_limited(self) -> list[RecordedCall]:
        """Calls answered 429, scripted or enforced."""
        return [c for c in self.calls if c.http_status == 429]

    def _take_injection(self, method: str, params: Mapping[str, Any]) -> Injection | None:
        queue = self._injections.get(method)
        if not queue:
            return None
        injection = next((i for i in queue if self._concerns(i, params)), None)
        if injection is None:
            return None
        injection.remaining -= 1
        if injection.remaining <= 0:
            queue.remove(injection)
        return injection

    def _concerns(self, injection: Injection, params: Mapping[str, Any]) -> bool:
        if injection.channel is None:
            return True
        ref = str(params.get("channel") or "")
        wanted = injection.channel.removeprefix("#")
        known = self.state.channels.get(ref)
        return ref == wanted or (known is not None and known.name == wanted)

    @staticmethod
    def _injected_answer(injection: Injection) -> web.Response:
        if injection.kind == "rate_limit":
            return rate_limited_answer(injection.retry_after)
        if injection.kind == "http_error":
            if injection.body is not None:
                return web.Response(
                    status=injection.status,
                    body=injection.body.encode(),
                    content_type=injection.content_type,
                )
            return web.json_response(
                {"ok": False, "error": "internal_error"}, status=injection.status
            )
        return web.json_response({"ok": False, "error": injection.error})


def rate_limited_answer(retry_after: int) -> web.Response:
    return web.json_response(
        {"ok": False, "error": "ratelimited"},
        status=429,
        headers={"Retry-After": str(retry_after)},
    )
