"""What the Slack double records (Web API calls, response_url posts) and how tests wait on it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("bot.console.workspace.server")


@dataclass
class RecordedCall:
    """One Web API call as the double saw it, with the answer it gave."""

    method: str
    params: dict[str, Any]  # query + body merged; JSON-string fields decoded; no token
    time: float
    response: dict[str, Any] = field(default_factory=dict)
    http_status: int = 200
    reply_lost: bool = False  # done, but the connection closed before the answer (lose_reply)

    @property
    def ok(self) -> bool:
        """Whether Slack would have answered `ok: true`."""
        return self.http_status == 200 and bool(self.response.get("ok"))


@dataclass
class RecordedResponse:
    """One POST to a response_url."""

    url_id: str
    payload: dict[str, Any]
    time: float = 0.0
    http_status: int = 200


EventHook = Callable[["RecordedCall | RecordedResponse"], Awaitable[None]]


class Recording:
    """SlackDouble's record of calls and response_url posts, and waiting for them."""

    calls: list[RecordedCall]
    responses: list[RecordedResponse]
    on_event: EventHook | None
    _changed: asyncio.Event
    _changed_loop: asyncio.AbstractEventLoop | None

    def calls_to(self, method: str) -> list[RecordedCall]:
        """Recorded calls to one method, oldest first."""
        return [c for c in self.calls if c.method == method]

    async def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5.0,
    ) -> list[RecordedCall]:
        """Wait until `count` calls to `method` were recorded; returns all calls to it."""
        await self._wait_until(
            lambda: len(self.calls_to(method)) >= count,
            timeout,
            lambda: f"{count} call(s) to {method}; recorded: {[c.method for c in self.calls]}",
        )
        return self.calls_to(method)

    async def wait_for_response(
        self,
        count: int = 1,
        timeout: float = 5.0,
    ) -> list[RecordedResponse]:
        """Wait until `count` response_url posts were recorded; returns them all."""
        await self._wait_until(
            lambda: len(self.responses) >= count,
            timeout,
            lambda: f"{count} response_url post(s); got {len(self.responses)}",
        )
        return list(self.responses)

    async def _wait_until(
        self, done: Callable[[], bool], within: float, describe: Callable[[], str]
    ) -> None:
        loop = asyncio.get_running_loop()
        if self._changed_loop is not loop:
            # An Event binds to the first loop that waits on it; a double may outlive a loop.
            self._changed, self._changed_loop = asyncio.Event(), loop
        deadline = loop.time() + within
        while not done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"SlackDouble: timed out after {within}s waiting for {describe()}"
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue

    def _notify(self) -> None:
        self._changed.set()

    async def _emit(self, item: RecordedCall | RecordedResponse) -> None:
        self._notify()
        if self.on_event is not None:
            try:
                await self.on_event(item)
            except Exception:  # a broken printer must not break the API
                logger.exception("SlackDouble on_event hook failed")
