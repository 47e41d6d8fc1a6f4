"""The one way the bot runs work in the background: a named loop, one failure policy.

`BackgroundLoop(name, round, interval=...)` calls `round()` every `interval` seconds (sooner
after `kick()`) until `stop()`. A round that fails is logged and the loop keeps going, backing
off with jitter: an outage of the store, Redis or Slack (a `ChatOpsError`) is one WARNING line,
anything else (a bug) an ERROR with its traceback; the next round waits `interval` doubled per
failure in a row, up to `max_backoff` (never less than `interval`), spread by +-20% so that
replicas that failed together do not retry together. A round that succeeds resets the count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from bot.errors import ChatOpsError

log = logging.getLogger(__name__)

JITTER = 0.2


def jitter(delay: float, rng: Callable[[], float] = random.random) -> float:
    """`delay` spread evenly over +-20%: retries of many workers do not arrive together."""
    return delay * (1 - JITTER + 2 * JITTER * rng())


class BackgroundLoop:
    """Runs `round()` every `interval` seconds until stopped (see the module's policy)."""

    def __init__(
        self,
        name: str,
        round: Callable[[], Awaitable[Any]],
        *,
        interval: float,
        max_backoff: float = 60.0,
        first_round_now: bool = True,
    ) -> None:
        self.name = name
        self.interval = interval
        self.max_backoff = max(max_backoff, interval)
        self.failures = 0  # rounds failed in a row
        self._round = round
        self._first_round_now = first_round_now
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=self.name)

    def kick(self) -> None:
        """Run the next round now rather than after the wait."""
        self._wake.set()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            # The flag too: on Python 3.11 asyncio.wait_for (inside psycopg_pool's getconn)
            # can swallow a cancellation, and the loop would then run on forever.
            self._stopping = True
            self._wake.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def next_wait(self) -> float:
        """Seconds until the next round: `interval`, or the back-off after failures."""
        if self.failures == 0:
            return self.interval
        return jitter(min(self.max_backoff, self.interval * 2 ** (self.failures - 1)))

    async def _run(self) -> None:
        if not self._first_round_now:
            await self._wait()
        while not self._stopping:
            await self.run_once()
            await self._wait()

    async def run_once(self) -> bool:
        """One round under the failure policy; whether it succeeded."""
        try:
            await self._round()
        except asyncio.CancelledError:
            raise
        except ChatOpsError as exc:  # an outage: the next round tries again
            self.failures += 1
            log.warning(
                "%s: round failed (%d in a row), will retry: %s", self.name, self.failures, exc
            )
            return False
        except Exception:
            self.failures += 1
            log.exception("%s: round failed (%d in a row)", self.name, self.failures)
            return False
        self.failures = 0
        return True

    async def _wait(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=self.next_wait())
        self._wake.clear()
