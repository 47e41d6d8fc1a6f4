"""When reminders fire: in-memory APScheduler jobs for those due soon, and a periodic sweep.

The store is the source of truth; the scheduler only triggers. Each process holds jobs for
the reminders due within `lookahead` and sweeps the store every `sweep_interval` for anything
overdue (a crash, a clock moved, another process's plan) and for what comes due next, so
memory does not grow with open incidents. A reminder planned in a transaction is handed over
only after that transaction commits (`hold_after_commit`): a job that ran first would find no
row, or one that a rollback then removes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.clock import Clock
from bot.reminders import storage as reminders
from bot.store import Store, Tx

log = logging.getLogger(__name__)

_HOLDS_PER_TURN = 25  # jobs a sweep holds before it lets the event loop run others


class Fires(Protocol):
    """What the scheduler triggers (bot.reminders.firing.ReminderFiring)."""

    async def fire(self, reminder_id: int) -> object: ...

    async def fire_due(self) -> int: ...


class ReminderScheduler:
    """In-memory triggers for one process; start() and stop() with the bot."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        sweep_interval: float = 5.0,
        lookahead: float | None = None,
        max_concurrent_fires: int = 100,
    ) -> None:
        self.store = store
        self.clock = clock
        self.sweep_interval = sweep_interval
        # Jobs are held in memory only for reminders due this soon; the sweep brings the
        # rest in as their time approaches.
        self.lookahead = lookahead if lookahead is not None else max(3 * sweep_interval, 10.0)
        # Jobs due together wait on one batch (bot.reminders.firing): as many slots as a
        # batch holds let a burst go in one batch instead of queueing for slots.
        self._fire_slots = asyncio.Semaphore(max_concurrent_fires)
        self._scheduler: AsyncIOScheduler | None = None
        self._fires: Fires | None = None
        self._scheduled: set[int] = set()
        self._inflight: set[asyncio.Task[Any]] = set()
        self._sweep_lock = asyncio.Lock()
        self._stopping = False

    @property
    def scheduler(self) -> AsyncIOScheduler | None:
        """The running APScheduler (None when stopped): for diagnostics and benchmarks."""
        return self._scheduler

    @property
    def stopping(self) -> bool:
        """True while stop() runs: a batch being fired hands its remaining claims back."""
        return self._stopping

    @property
    def sweeping(self) -> bool:
        return self._sweep_lock.locked()

    async def start(self, fires: Fires) -> None:
        """Start triggering `fires`: an immediate sweep fires what came due while nobody ran."""
        if self._scheduler is not None:
            return
        self._stopping = False
        self._fires = fires
        # APScheduler logs every job run at INFO: one line per reminder is noise here.
        logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
        scheduler = AsyncIOScheduler(
            timezone=UTC,
            # A job that runs late must still run (never "missed"): lateness is measured.
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )
        scheduler.start()
        scheduler.add_job(
            self.sweep,
            "interval",
            args=[fires],
            seconds=self.sweep_interval,
            id="reminder-sweep",
            next_run_time=datetime.now(UTC),
            max_instances=2,  # the second returns at once; avoids "skipped" warnings
        )
        self._scheduler = scheduler

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop triggering; let firings already under way finish (up to `timeout`)."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is None:
            return
        self._stopping = True  # jobs still waiting for a slot return without firing
        scheduler.remove_all_jobs()
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=timeout)
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0)  # AsyncIOScheduler shuts down on the next loop iteration
        self._scheduled.clear()
        self._stopping = False  # fire_due() and fire() still work by hand (tests, console)

    async def sweep(self, fires: Fires) -> int:
        """Fire what is overdue and hold jobs for what comes due within the lookahead."""
        if self._sweep_lock.locked():
            return 0
        task = asyncio.current_task()
        if task is not None and self._scheduler is not None:
            self._inflight.add(task)  # stop() lets it finish rather than cancel its claims
        async with self._sweep_lock:
            try:
                fired = await fires.fire_due()
                until = self.clock.now() + timedelta(seconds=self.lookahead)
                async with self.store.transaction() as tx:
                    upcoming = await reminders.upcoming(tx, until, limit=50_000)
                for number, (reminder_id, due_at) in enumerate(upcoming, 1):
                    self.hold(reminder_id, due_at)
                    if number % _HOLDS_PER_TURN == 0:
                        # Holding a job costs APScheduler about 0.2 ms: a storm's sweep holds
                        # thousands, and must not stall the jobs and firings due meanwhile.
                        await asyncio.sleep(0)
                return fired
            except Exception:
                # The store may be down: the next sweep tries again, nothing is lost.
                log.exception("reminder sweep failed; retrying at the next sweep")
                return 0
            finally:
                if task is not None:
                    self._inflight.discard(task)

    def hold_after_commit(self, tx: Tx, reminder_id: int, due_at: datetime, now: datetime) -> None:
        """Hold a job for a reminder `tx` just planned, if it is due soon, once `tx` commits."""
        if due_at <= now + timedelta(seconds=self.lookahead):
            tx.after_commit(functools.partial(self.hold, reminder_id, due_at))

    def hold(self, reminder_id: int, due_at: datetime) -> None:
        """Hold an in-memory job that fires the reminder at `due_at` (one per reminder)."""
        if self._scheduler is None or reminder_id in self._scheduled:
            return  # already held (or running): the sweep finds it again while it is pending
        # The service clock may be a fake one: keep the delay, run on the real clock.
        delay = max(0.0, (due_at - self.clock.now()).total_seconds())
        self._scheduled.add(reminder_id)
        self._scheduler.add_job(
            self._run_job,
            "date",
            run_date=datetime.now(UTC) + timedelta(seconds=delay),
            args=[reminder_id, due_at.timestamp()],
            id=f"reminder-{reminder_id}",
            replace_existing=True,
        )

    async def _run_job(self, reminder_id: int, due_ts: float) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            await self._run_reminder(reminder_id, due_ts)
        except Exception:
            # Left pending (or its claim expires): the sweep fires it later.
            log.exception("reminder %s: firing failed; the sweep will retry", reminder_id)
        finally:
            self._scheduled.discard(reminder_id)
            if task is not None:
                self._inflight.discard(task)

    async def _run_reminder(self, reminder_id: int, due_ts: float) -> None:
        early = due_ts - self.clock.now().timestamp()
        if early > 1.0:
            return  # the clock was moved back: the sweep schedules it again in time
        if early > 0:
            # Timers may wake a hair early; never fire before the due time (waits honoured).
            await asyncio.sleep(early)
        async with self._fire_slots:
            if self._stopping or self._fires is None:
                return  # still pending: whichever process runs next fires it
            await self._fires.fire(reminder_id)
