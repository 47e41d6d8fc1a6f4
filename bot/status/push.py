"""A change to the status page, pushed to every replica at once.

Each process keeps its page's documents and reads the version at most every
STATUS_REFRESH_SECONDS (bot.status.page). After a change commits (a withdrawal: a secret
published by mistake; an update put back or published; a public incident changed), its
process signals the others through the Coordinator (Redis pub/sub when REDIS_URL is set),
and each drops its kept documents at once: every replica serves the same page, not one the
new page and another the old one until its next check. The push only
hastens the version check: a signal lost (Redis down, a replica reconnecting) leaves that
replica on today's bound, and a replica that (re)starts listening reads the version again.

The listener never stops for good: a dropped connection, a Redis restart, a connection that
went silent (no PONG to the coordinator's heartbeat) or any other failure ends one attempt;
it listens again after a back-off, and on resubscribing treats everything as changed (the
page reads the version at its next request). One warning per outage, one line at its end;
`chatops_replicas_listening` and /readyz's `replicas` say whether this process hears the
others now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from bot import metrics
from bot.coordination import Coordinator
from bot.errors import CoordinatorUnavailable
from bot.status.page import StatusPage

log = logging.getLogger(__name__)

CHANNEL = "status-page-stale"
# Between attempts to listen again after Redis failed: doubling up to the cap. Missing
# signals meanwhile costs nothing beyond the version check's bound.
RETRY_SECONDS = 1.0
RETRY_MAX_SECONDS = 30.0


class StalePush:
    """Sends and receives "the status page changed: read the version now"."""

    def __init__(
        self, coordinator: Coordinator, page: StatusPage, *, retry: float = RETRY_SECONDS
    ) -> None:
        self.coordinator = coordinator
        self.page = page
        self.retry = retry
        self.failures = 0  # attempts to listen that failed in a row
        self.listening = asyncio.Event()  # set while subscribed (tests wait for it)
        self.received = 0  # signals heard (for tests)
        self.problem = "not listening yet"  # why not listening, while not
        self._down_since = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()

    def health(self) -> str:
        """ "ok" while listening to the other replicas, else since when and why not."""
        if self.listening.is_set():
            return "ok"
        away = time.monotonic() - self._down_since
        return f"not hearing the other replicas for {away:.0f} s: {self.problem}"

    async def send(self) -> None:
        """Tell every other replica; a failure is logged (they see it at their next check)."""
        try:
            await self.coordinator.signal(CHANNEL, "changed")
        except CoordinatorUnavailable as exc:
            log.warning("status page: the change was not pushed to the replicas: %s", exc)

    def send_soon(self) -> None:
        """`send`, from a transaction's after-commit hook (which cannot wait)."""
        task = asyncio.create_task(self.send(), name="status-page-push-send")
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="status-page-push")

    async def stop(self) -> None:
        if self._sending:  # pushes of changes committed already: each bounded by the timeout
            await asyncio.gather(*self._sending, return_exceptions=True)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.listening.clear()

    async def _listen(self) -> None:
        while True:
            try:
                async for message in self.coordinator.signals(CHANNEL):
                    if message:
                        self.received += 1
                    else:  # (re)subscribed: a signal sent while not listening was missed
                        self._listening()
                    self.page.stale()
                problem = "the subscription ended"
            except CoordinatorUnavailable as exc:
                problem = str(exc)
            except Exception as exc:  # anything else: never die silently, listen again
                log.exception("status page: the listener failed")
                problem = f"the listener failed: {type(exc).__name__}"
            self._not_listening(problem)
            doubled = self.retry * 2 ** min(max(self.failures - 1, 0), 10)
            await asyncio.sleep(min(doubled, RETRY_MAX_SECONDS))

    def _listening(self) -> None:
        self.listening.set()
        metrics.REPLICAS_LISTENING.set(1)
        if self.failures:
            away = time.monotonic() - self._down_since
            log.info(
                "status page: listening for withdrawals again after %.0f s (page re-read)", away
            )
        self.failures = 0

    def _not_listening(self, problem: str) -> None:
        # Once per outage, not once a retry: the log is read at 3 a.m.
        if not self.failures:
            log.warning("status page: not listening for withdrawals, will retry: %s", problem)
            metrics.REPLICAS_OUTAGES.inc()
            self._down_since = time.monotonic()
        self.failures += 1
        self.problem = problem
        self.listening.clear()
        metrics.REPLICAS_LISTENING.set(0)
