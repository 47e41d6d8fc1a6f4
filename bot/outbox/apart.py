"""The kinds delivered apart from the Slack posts: effects whose handlers call something else
(a paging service, a diagnosis' checks) that may be slow or hang, and post nothing to Slack
themselves, so they have no channel's pace or order to keep.

Each claimed effect (its lane's next one) is delivered in a task of its own, up to
`concurrency` at once, and whoever claims them never waits for one to end: a call that hangs
holds up its own lane, nothing else (bot.outbox's docstring). Each is marked done as soon as
it was delivered, and then kicks the dispatcher: a slot is free, and what comes next in its
lane (of any kind) may be due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from bot.errors import ChatOpsError
from bot.outbox.completions import Completions
from bot.outbox.queue import Effect

log = logging.getLogger(__name__)


class ApartDeliveries:
    """The kinds registered `apart`, and their deliveries in flight."""

    def __init__(
        self,
        concurrency: int,
        claim: Callable[[int], Coroutine[Any, Any, list[Effect]]],
        deliver: Callable[[Effect], Coroutine[Any, Any, bool]],
        completions: Completions,
        kick: Callable[[], None],
    ) -> None:
        self.concurrency = concurrency
        self.kinds: tuple[str, ...] = ()
        self.idle = asyncio.Event()  # set while nothing is in flight
        self.idle.set()
        self._claim = claim  # up to n due effects of `kinds`, each its lane's next
        self._deliver = deliver  # one claimed effect: whether it was delivered
        self._completions = completions
        self._kick = kick
        self._running: set[asyncio.Task[bool]] = set()
        self._starting = asyncio.Lock()  # the loop's round and a drain: never over the limit

    def add(self, kind: str) -> None:
        self.kinds = tuple(sorted({*self.kinds, kind}))

    async def start(self) -> set[asyncio.Task[bool]]:
        """Claim as many due effects as slots are free and start delivering each; returns
        their tasks."""
        started: set[asyncio.Task[bool]] = set()
        async with self._starting:
            free = self.concurrency - len(self._running)
            if not self.kinds or free <= 0:
                return started
            for effect in await self._claim(free):
                task = asyncio.create_task(self._one(effect), name=f"outbox-apart-{effect.id}")
                task.add_done_callback(self._ended)
                started.add(task)
            self._running |= started
        if self._running:
            self.idle.clear()
        return started

    async def _one(self, effect: Effect) -> bool:
        """Deliver and mark one effect. An error is logged: the effect is tried again once
        its claim runs out (as when a round of the dispatcher fails)."""
        try:
            delivered = await self._deliver(effect)
            await self._completions.flush()
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):  # the store is gone too: delivered again
                await asyncio.shield(self._completions.flush())
            raise
        except ChatOpsError as exc:
            log.warning("outbox: effect %s (%s): %s", effect.id, effect.kind, exc)
            return False
        except Exception:
            log.exception("outbox: effect %s (%s) could not be delivered", effect.id, effect.kind)
            return False
        finally:
            self._kick()
        return delivered

    def _ended(self, task: asyncio.Task[bool]) -> None:
        self._running.discard(task)
        if not self._running:
            self.idle.set()

    async def deliver_due(self) -> int:
        """Deliver every due effect of these kinds, waiting for the deliveries started here;
        return how many were delivered."""
        delivered = 0
        waiting: set[asyncio.Task[bool]] = set()
        while waiting := waiting | await self.start():
            done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            delivered += sum(1 for task in done if not task.cancelled() and task.result())
        return delivered

    async def stop(self) -> None:
        """Cut the deliveries in flight short (each marks what was delivered before it ends)."""
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
