"""The outbox's dispatcher: claims due effects, delivers them through the handlers of their
kinds, retries, gives up (bot.outbox.failures), and prunes (bot.outbox.retention); the
invariants are in bot.outbox's docstring."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from enum import Enum
from typing import Any

from bot import logs, metrics
from bot.background import BackgroundLoop
from bot.clock import Clock
from bot.errors import NotifierError, StoreBusy, StoreUnavailable
from bot.outbox.apart import ApartDeliveries
from bot.outbox.budget import handler_deadline
from bot.outbox.claims import claim_runs, release, still_held
from bot.outbox.completions import Completions
from bot.outbox.failures import GIVE_UP_AFTER, Failures
from bot.outbox.queue import (
    DUE_TURNS,
    Effect,
    EffectHandler,
    FailureHandler,
    current_effect,
    follow_ups,
    marked_with,
    undone_count,
    undone_stats,
)
from bot.outbox.retention import KEEP_DELIVERED, KEEP_FAILED, PRUNE_INTERVAL, Retention
from bot.store import Store

log = logging.getLogger(__name__)


class _Outcome(Enum):
    DELIVERED = "delivered"
    NOT_DELIVERED = "not delivered"  # retried, failed, or no longer this process's
    FOLLOWED = "followed"  # delivered, and its handler queued a follow-up in its lane


class OutboxDispatcher:
    """Delivers queued effects through the handlers registered for their kinds."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        poll_interval: float = 1.0,
        claim_seconds: float = 60.0,
        handler_timeout: float = 20.0,
        max_attempts: int = 8,
        give_up_after: timedelta = GIVE_UP_AFTER,
        max_backoff: float = 300.0,
        batch_size: int = 100,
        # A lane's next effects claimed together (within `batch_size`): few lanes with long
        # queues cost a claim per run, not per effect. Kept short: the members of a run wait
        # claimed, out of other processes' reach, while the ones before them are delivered.
        run_length: int = 20,
        # Deliveries at once. One by default: the Slack pacer hands out each channel's slots
        # ahead of time, so concurrent posts to one channel can arrive closer together than
        # Slack allows (429s in tests/e2e/test_slack_pace.py with 8), and announcements of
        # different incidents would reach the channel out of the order they were declared.
        concurrency: int = 1,
        # Deliveries at once of the kinds registered `apart` (bot.outbox.apart): no Slack post
        # among them, so no channel's pace or order to keep.
        apart_concurrency: int = 8,
        keep_delivered: timedelta = KEEP_DELIVERED,
        keep_failed: timedelta = KEEP_FAILED,
        prune_interval: timedelta = PRUNE_INTERVAL,
    ) -> None:
        if handler_timeout >= claim_seconds / 2:
            # still_held relies on it: a claim renewed at half-time outlasts any handler.
            raise ValueError("handler_timeout must be under half of claim_seconds")
        self.store = store
        self.clock = clock
        self.poll_interval = poll_interval
        self.claim_seconds = claim_seconds
        self.handler_timeout = handler_timeout
        self.failures = Failures(
            store,
            clock,
            max_attempts=max_attempts,
            give_up_after=give_up_after,
            max_backoff=max_backoff,
        )
        # A delivery's longest run: its timeout moved on by its waits for Slack's pace, within
        # the half claim that is left when it starts (still_held), less a margin for the
        # statements around it (bot.outbox.budget).
        self.delivery_limit = max(handler_timeout, claim_seconds / 2 - 1.0)
        self.batch_size = batch_size
        self.run_length = run_length
        self.concurrency = concurrency
        self.retention = Retention(
            store,
            clock,
            keep_delivered=keep_delivered,
            keep_failed=keep_failed,
            interval=prune_interval,
        )
        self.completions = Completions(store, clock)
        self._handlers: dict[str, EffectHandler] = {}
        self._loop = BackgroundLoop("outbox-dispatcher", self._round, interval=poll_interval)
        claim_apart = lambda n: self._claim(n, 1, apart=True)  # noqa: E731
        self.apart = ApartDeliveries(
            apart_concurrency, claim_apart, self._delivered, self.completions, self.kick
        )
        apart_round = lambda: self._round(apart=True)  # noqa: E731
        self._apart_loop = BackgroundLoop("outbox-apart", apart_round, interval=poll_interval)
        self._idle = asyncio.Event()
        self._idle.set()
        self._rounds = 0  # delivery rounds in progress (the loop's and drain's)
        self.stopping = False  # stop() called: no more claims

    def register(
        self,
        kind: str,
        handler: EffectHandler,
        on_failure: FailureHandler | None = None,
        *,
        apart: bool = False,
    ) -> None:
        """Say how effects of `kind` are delivered (and what to do if they never can be);
        `apart`: beside the Slack posts, never holding them up (bot.outbox.apart), for a
        handler that posts nothing to Slack and calls something that may hang."""
        self._handlers[kind] = handler
        if on_failure is not None:
            self.failures.on_failure[kind] = on_failure
        if apart:
            self.apart.add(kind)

    def kick(self) -> None:
        """Deliver now rather than at the next poll (called after a commit)."""
        self._loop.kick()
        self._apart_loop.kick()

    def start(self) -> None:
        self.stopping = False
        self._loop.start()
        self._apart_loop.start()

    async def stop(self) -> None:
        """Stop delivering (SIGTERM): nothing more is claimed, and the deliveries under way
        run to their end, for up to `delivery_limit`: one cut off mid-call (Slack had the
        message) would be made again by the next process, a second post or page."""
        self.stopping = True
        with contextlib.suppress(TimeoutError):
            # The deliveries apart too (a provider's trigger cut off would be made again).
            await asyncio.wait_for(
                asyncio.gather(self._idle.wait(), self.apart.idle.wait()),
                timeout=self.delivery_limit,
            )
        await self._loop.stop()
        await self._apart_loop.stop()
        await self.apart.stop()

    async def _round(self, apart: bool = False) -> None:
        try:
            if apart:
                if not self.stopping:
                    await self.apart.start()  # not waiting for them: each one kicks when done
                return
            await self._deliver_due()
            await self.retention.prune_if_due()
        except (StoreUnavailable, StoreBusy):
            metrics.STORE_ERRORS.inc()
            raise

    async def _claim(self, batch_size: int, run_length: int, *, apart: bool) -> list[Effect]:
        """Claim due effects in runs: each lane's next ones that nothing earlier holds back
        (of the kinds registered `apart`, or of the others)."""
        now = self.clock.now().timestamp()
        until = now + self.claim_seconds
        async with self.store.transaction() as tx:
            return await claim_runs(
                tx, now, until, batch_size, run_length, self.apart.kinds, of_apart=apart
            )

    async def deliver_due(self) -> int:
        """Deliver every effect that is due; return how many were delivered. The kinds
        registered `apart` go beside the others, both again until neither finds any (one's
        delivery can free the next effect of a lane in the other)."""
        if not self.apart.kinds:
            return await self._deliver_due()
        delivered = 0
        while True:
            counts = await asyncio.gather(self._deliver_due(), self.apart.deliver_due())
            delivered += sum(counts)
            if not any(counts):
                return delivered

    async def _deliver_due(self) -> int:
        """Deliver every due effect of the kinds not registered `apart`; how many."""
        delivered = 0
        self._rounds += 1
        self._idle.clear()
        try:
            await self.completions.flush()  # left by a round the store failed
            # Delivering a claimed batch frees what comes after it in each lane: claim again
            # until nothing is left to take.
            while not self.stopping and (
                effects := await self._claim(self.batch_size, self.run_length, apart=False)
            ):
                done = await self._deliver_batch(effects)
                await self.completions.flush()
                if done and self.apart.kinds:
                    self._apart_loop.kick()  # their lanes' next effects may be of those kinds
                delivered += done
        except asyncio.CancelledError:
            # Stopped: what was delivered is marked before the task ends, or a restart
            # would deliver it again.
            try:
                await asyncio.shield(self.completions.flush())
            except Exception as exc:  # the store is gone too: those will be delivered again
                log.warning("outbox: delivered effects left unmarked at stop: %s", exc)
            raise
        finally:
            self._rounds -= 1
            if self._rounds == 0:
                self._idle.set()
        return delivered

    async def _deliver_batch(self, effects: list[Effect]) -> int:
        """Deliver a claimed batch in waves: every lane's first effect, then every lane's
        second, ..., each wave `concurrency` at a time in the batch's order (one effect per
        lane in a wave, so no lane's order is lost, and lanes interleave as before runs).

        A lane's run stops at a member that is not delivered (retried, failed, or taken over
        by another process after its claim ran out) or whose handler queued a follow-up in its
        lane: the rest of the run is given back untried, since it now comes after those. Every
        delivery runs to its end even if another fails (one cut off mid-call would be made
        twice); the first error is raised after.
        """
        slots = asyncio.Semaphore(self.concurrency)
        waves: list[list[Effect]] = []
        turns: dict[str | int, int] = {}
        for effect in effects:  # in turn order; an effect without a lane is a run of its own
            lane = effect.id if effect.lane is None else effect.lane
            turns[lane] = turns.get(lane, -1) + 1
            if turns[lane] == len(waves):
                waves.append([])
            waves[turns[lane]].append(effect)
        started: set[int] = set()
        stopped: set[str | int] = set()
        errors: list[BaseException] = []
        delivered = 0

        async def one(effect: Effect) -> _Outcome:
            async with slots:
                started.add(effect.id)
                return await self._deliver_member(effect)

        try:
            for wave in waves:
                if self.stopping:
                    break  # the rest is given back untried, below
                now = [e for e in wave if (e.id if e.lane is None else e.lane) not in stopped]
                outcomes = await asyncio.gather(*(one(e) for e in now), return_exceptions=True)
                if self.completions.writes_waiting:
                    # A delivery stored what it posted: the lane's next effect may read it.
                    await self.completions.flush()
                for effect, outcome in zip(now, outcomes, strict=True):
                    if isinstance(outcome, BaseException):
                        errors.append(outcome)
                    elif outcome is not _Outcome.NOT_DELIVERED:
                        delivered += 1
                    if outcome is not _Outcome.DELIVERED:
                        stopped.add(effect.id if effect.lane is None else effect.lane)
        except asyncio.CancelledError:
            # Stopped mid-batch: what no handler started is given back, or it would wait out
            # its claim after a restart.
            try:
                untried = [e for e in effects if e.id not in started]
                await asyncio.shield(release(self.store, untried))
            except Exception as exc:
                log.warning("outbox: claimed effects left to run out at stop: %s", exc)
            raise
        try:
            await release(self.store, [e for e in effects if e.id not in started])
        except Exception:
            if not errors:
                raise
            log.warning("outbox: effects of stopped runs left to run out", exc_info=True)
        if errors:
            raise errors[0]
        return delivered

    async def _delivered(self, effect: Effect) -> bool:
        return await self._deliver_member(effect) is not _Outcome.NOT_DELIVERED

    async def _deliver_member(self, effect: Effect) -> _Outcome:
        """Deliver one claimed effect (its claim renewed if need be, the marks written first
        if a waiting one's claim would run out under its handler) and say how it went."""
        now = self.clock.now().timestamp()
        held = await still_held(self.store, effect, now, self.claim_seconds)
        if held is None:
            log.info("outbox: effect %s was taken over by another process", effect.id)
            return _Outcome.NOT_DELIVERED
        deadline = self.clock.now().timestamp() + self.delivery_limit
        if self.completions.runs_out_before(deadline):
            await self.completions.flush()
        queued: set[str] = set()
        writes: list[tuple[str, tuple[Any, ...]]] = []
        noting, storing = follow_ups.set(queued), marked_with.set(writes)
        try:
            if not await self._deliver(held):
                return _Outcome.NOT_DELIVERED
        finally:
            marked_with.reset(storing)
            follow_ups.reset(noting)
        self.completions.add(held, writes)
        metrics.OUTBOX_EFFECTS.labels(effect.kind, "delivered").inc()
        return _Outcome.FOLLOWED if queued else _Outcome.DELIVERED

    async def _deliver(self, effect: Effect) -> bool:
        """Run `effect`'s handler: True if it delivered (the caller marks it done), False if
        not (its retry or failure is written here)."""
        handler = self._handlers.get(effect.kind)
        if handler is None:
            await self.failures.fail(effect, f"no handler for effect kind {effect.kind!r}")
            return False
        delivering = current_effect.set(effect)
        try:
            with logs.bound(incident=effect.incident):
                # Waits for a Slack pace slot move the timeout on (bot.outbox.budget).
                async with handler_deadline(self.handler_timeout, self.delivery_limit):
                    await handler(effect)
        except NotifierError as exc:
            await self.failures.not_delivered(effect, exc)
            return False
        except TimeoutError:
            await self.failures.not_delivered(
                effect, NotifierError("timed out", error_code="timeout")
            )
            return False
        except (StoreUnavailable, StoreBusy) as exc:
            # The database out of reach or overloaded under the handler: an outage of the far
            # side like Slack's, retried for as long, never given up after a few attempts.
            log.warning("outbox: effect %s (%s): %s", effect.id, effect.kind, exc)
            code = "store_busy" if isinstance(exc, StoreBusy) else "store_unavailable"
            await self.failures.not_delivered(effect, NotifierError(str(exc), error_code=code))
            return False
        except Exception as exc:
            # Not a failure the handler knew about (a bug): tried again after the back-off,
            # never left to wait out its claim, `max_attempts` times.
            log.exception("outbox: effect %s (%s) raised", effect.id, effect.kind)
            error = NotifierError(type(exc).__name__, error_code="internal_error")
            await self.failures.not_delivered(effect, error, unexpected=True)
            return False
        finally:
            current_effect.reset(delivering)
        return True

    async def pending_count(self) -> int:
        async with self.store.transaction() as tx:
            return await undone_count(tx)

    async def pending_stats(self) -> tuple[int, float]:
        """How many effects are undone, and how old the oldest is (seconds; 0 when none)."""
        async with self.store.transaction() as tx:
            return await undone_stats(tx, self.clock.now().timestamp())

    async def drain(self, timeout: float = 10.0) -> None:
        """Deliver until nothing due is left (tests and the console use this)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            await self._idle.wait()
            await self.apart.idle.wait()
            if await self.deliver_due():
                continue
            # The background loop may still be delivering an effect this round could not
            # claim, and that effect may queue follow-ups: wait for it, then look again.
            await self._idle.wait()
            await self.apart.idle.wait()
            if not await self._due_count():
                return
            await asyncio.sleep(0.01)  # held by another process: give it a moment

    async def _due_count(self) -> int:
        """Effects due now and not held back by an earlier one (claimed ones included)."""
        now = self.clock.now().timestamp()
        async with self.store.transaction() as tx:
            row = await tx.fetchone(f"SELECT COUNT(*) AS n {DUE_TURNS}", (now,))
        return int(row["n"]) if row else 0

    async def prune(self) -> int:
        """Delete old delivered and failed effects now (bot.outbox.retention)."""
        return await self.retention.prune()

    @property
    def prune_runs(self) -> int:
        """How many times this dispatcher has pruned (tests wait on it)."""
        return self.retention.runs
