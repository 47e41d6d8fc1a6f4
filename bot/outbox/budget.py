"""A delivery's time: the handler's timeout is for its calls, not for its turn in Slack's pace.

A handler has `handler_timeout` (20 s) to do its work. A Slack call first waits for its pace
slot (bot.slack.pace), which in a busy channel can take seconds; counted against the timeout,
that wait plus a slow call could pass it and cut the call off mid-flight, after Slack had
made it: the effect retried, the message posted twice. So the wait moves the handler's
deadline on by as long as it lasts, within `limit`: past it, the effect's claim might run
out under the handler (another process would deliver it again), so a wait that would take
the delivery there is not waited at all: the effect is handed back (`NotifierError` with
`retry_after`, no failed attempt) before its call starts, to come back for its slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from bot.errors import NotifierError


@dataclass(frozen=True)
class Budget:
    """The running handler's timeout, the loop time it may never be moved past, and the task
    delivering (a task the handler starts inherits the budget, not the handler's timeout)."""

    timeout: asyncio.Timeout
    limit: float
    task: asyncio.Task[object] | None


delivery_budget: ContextVar[Budget | None] = ContextVar("outbox_budget", default=None)


async def wait_outside_timeout(seconds: float) -> None:
    """Wait `seconds` (a pace slot) without spending the delivering handler's timeout; raise
    a retryable NotifierError instead when the wait would take it past its budget's limit.
    Outside a delivery (a listener's call) it is a plain wait."""
    if seconds <= 0:
        return
    budget = delivery_budget.get()
    if budget is not None and budget.task is not asyncio.current_task():
        budget = None  # started by a handler, running on after it: no timeout of its own
    when = budget.timeout.when() if budget is not None else None
    if budget is not None and when is not None:
        if when + seconds > budget.limit:
            raise NotifierError(
                f"waiting {seconds:.1f} s for a Slack slot would outlast the delivery's claim",
                error_code="paced",
                retry_after=seconds,
            )
        budget.timeout.reschedule(when + seconds)
    await asyncio.sleep(seconds)


@asynccontextmanager
async def handler_deadline(timeout: float, limit: float) -> AsyncIterator[None]:
    """`timeout` seconds for the handler run inside, moved on by its waits for Slack's pace
    (wait_outside_timeout) up to `limit` seconds from now."""
    async with asyncio.timeout(timeout) as deadline:
        until = asyncio.get_running_loop().time() + limit
        budgeting = delivery_budget.set(Budget(deadline, until, asyncio.current_task()))
        try:
            yield
        finally:
            delivery_budget.reset(budgeting)
