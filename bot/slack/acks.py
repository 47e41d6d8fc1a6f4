"""Acks first: Slack's 200 goes out the moment a listener acks, and what the listener does after
its ack waits while other requests are still on their way to theirs.

Bolt (process_before_response=False) starts the listener as a task and looks for its ack every
10 ms, so each answer waited for the next look, while the event loop ran the work that earlier
requests do after their ack (a declaration's transaction, its answers) ahead of requests not
yet acked. Here, over HTTP (bot.server):

- `PromptAck`, seeded into the request's context as its `ack`, resolves a future when called:
  the server writes the 200 then, not when Bolt's dispatch notices.
- `AckGate` counts the requests between arrival and their written answer. `await ack()` returns
  to the listener (whose next lines are its post-ack work) once none is left, or after
  `hold_seconds` at most, so a steady stream of requests cannot hold that work back for long.

Socket Mode acks over its own connection; its handler (bot.slack.socket_mode) seeds a PromptAck
too, so that the gate counts every listener past its ack (`acked_work`) and a stop waits for
their work before the store closes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

# How long a listener's post-ack work may be held for other requests' acks: well inside
# the 3 s a trigger_id lives (views.open comes right after an ack), and far longer than a
# burst of acks takes to write.
HOLD_SECONDS = 0.2


class AckGate:
    """Requests between arrival and their written answer, and a wait for there being none."""

    def __init__(self, hold_seconds: float = HOLD_SECONDS) -> None:
        self.hold_seconds = hold_seconds
        self.pending = 0
        self.held_too_long = 0  # post-ack waits that ran out of patience (hold_seconds)
        self._quiet: asyncio.Event | None = None  # set when `pending` drops to 0
        # Listeners past their ack: Slack has its 200, so their work must be done before the
        # store closes (a stop mid-burst lost every declaration acked in it).
        self.acked_work: set[asyncio.Task[Any]] = set()

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """Around one request, from its arrival until its answer is written."""
        self.pending += 1
        try:
            yield
        finally:
            self.pending -= 1
            if self.pending == 0 and self._quiet is not None:
                self._quiet.set()
                self._quiet = None

    def track(self, task: asyncio.Task[Any] | None) -> None:
        """Count `task` (a listener that has acked) until it ends."""
        if task is not None and task not in self.acked_work:
            self.acked_work.add(task)
            task.add_done_callback(self.acked_work.discard)

    async def finish(self, timeout: float) -> int:
        """Wait up to `timeout` for the acked listeners' work; return how many it cut short."""
        if not self.acked_work:
            return 0
        _, unfinished = await asyncio.wait(set(self.acked_work), timeout=timeout)
        return len(unfinished)

    async def quiet(self) -> None:
        """Return once no request is waiting for its answer, or after `hold_seconds`."""
        if self.pending == 0:
            return
        if self._quiet is None:
            self._quiet = asyncio.Event()
        try:
            async with asyncio.timeout(self.hold_seconds):
                await self._quiet.wait()
        except TimeoutError:
            self.held_too_long += 1  # requests keep coming: the work goes on beside them


class PromptAck(AsyncAck):
    """Bolt's ack that also says when it was called (`sent`), then holds the listener at the
    gate until the answers in flight are written (the server sets `written` for its own)."""

    def __init__(self, gate: AckGate) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # slack_bolt leaves it unannotated
        self.gate = gate
        self.sent: asyncio.Future[BoltResponse] = asyncio.get_running_loop().create_future()
        self.written = False

    async def __call__(self, *args: Any, **kwargs: Any) -> BoltResponse:
        response = await super().__call__(*args, **kwargs)
        if not self.sent.done():
            # Called from the listener's own task (Bolt starts it apart from the dispatch).
            self.gate.track(asyncio.current_task())
            self.sent.set_result(response)
            await self.gate.quiet()
        return response


# Dispatches still running after their answer went out (Bolt notices the ack a little later).
_finishing: set[asyncio.Future[BoltResponse]] = set()


async def dispatch(app: AsyncApp, request: AsyncBoltRequest, ack: PromptAck) -> BoltResponse:
    """Bolt's answer to `request`: the ack's response as soon as a listener acks, else what the
    dispatch returns (a middleware's refusal, an unhandled request, an error before the ack)."""
    request.context["ack"] = ack
    running = asyncio.ensure_future(app.async_dispatch(request))
    await asyncio.wait((running, ack.sent), return_when=asyncio.FIRST_COMPLETED)
    if ack.sent.done():
        if not running.done():
            _finishing.add(running)
            running.add_done_callback(_finishing.discard)
        return ack.sent.result()
    return running.result()
