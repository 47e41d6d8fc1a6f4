"""The outbox: notifications accepted in a transaction, delivered after it commits.

A service enqueues an effect (`kind` + JSON payload) in the same transaction as the state
change, so a Slack outage or a crash between commit and delivery loses nothing: the
dispatcher delivers pending effects, retries what failed for a transient reason (429, 5xx,
network) with back-off, and gives up on permanent errors (channel_not_found, missing scope)
after telling the effect's failure handler. Rows are claimed atomically, so several bot
processes can run dispatchers on one store and each effect is delivered by one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.clock import Clock, utc_from_timestamp
from bot.errors import NotifierError, StoreUnavailable
from bot.redact import redact_text
from bot.store import Store, Tx, skip_locked

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Effect:
    id: int
    kind: str
    incident_id: str | None
    payload: dict[str, Any]
    attempts: int
    created_at: datetime


EffectHandler = Callable[[Effect], Awaitable[None]]
FailureHandler = Callable[[Effect, NotifierError], Awaitable[None]]


async def enqueue(
    tx: Tx,
    at: datetime,
    kind: str,
    payload: dict[str, Any],
    *,
    incident_id: str | None = None,
    delay: float = 0.0,
) -> int:
    """Queue an effect inside the caller's transaction; delivered once it commits."""
    row = await tx.fetchone(
        "INSERT INTO outbox (kind, incident_id, payload, created_at, available_at)"
        " VALUES (?, ?, ?, ?, ?) RETURNING id",
        (kind, incident_id, json.dumps(payload), at.timestamp(), at.timestamp() + delay),
    )
    assert row is not None
    return int(row["id"])


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
        batch_size: int = 20,
    ) -> None:
        self.store = store
        self.clock = clock
        self.poll_interval = poll_interval
        self.claim_seconds = claim_seconds
        self.handler_timeout = handler_timeout
        self.max_attempts = max_attempts
        self.batch_size = batch_size
        self._handlers: dict[str, EffectHandler] = {}
        self._on_failure: dict[str, FailureHandler] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._rounds = 0  # delivery rounds in progress (the loop's and drain's)

    def register(
        self, kind: str, handler: EffectHandler, on_failure: FailureHandler | None = None
    ) -> None:
        """Say how effects of `kind` are delivered (and what to do if they never can be)."""
        self._handlers[kind] = handler
        if on_failure is not None:
            self._on_failure[kind] = on_failure

    def kick(self) -> None:
        """Deliver now rather than at the next poll (called after a commit)."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="outbox-dispatcher")

    async def stop(self) -> None:
        if self._task is not None:
            # The flag too: on Python 3.11 asyncio.wait_for (inside psycopg_pool's getconn)
            # can swallow a cancellation, and the loop would then run on forever.
            self._stopping = True
            self._wake.set()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.deliver_due()
            except StoreUnavailable as exc:
                log.warning("outbox: store unavailable, will retry: %s", exc)
            except Exception:
                log.exception("outbox: delivery round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
            self._wake.clear()

    async def _claim(self) -> list[Effect]:
        now = self.clock.now().timestamp()
        async with self.store.transaction() as tx:
            rows = await tx.fetchall(
                "UPDATE outbox SET claimed_until = ?, attempts = attempts + 1 WHERE id IN ("
                " SELECT id FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL"
                " AND available_at <= ? AND (claimed_until IS NULL OR claimed_until < ?)"
                f" ORDER BY id LIMIT {int(self.batch_size)}{skip_locked(tx)})"
                " RETURNING id, kind, incident_id, payload, attempts, created_at",
                (now + self.claim_seconds, now, now),
            )
        return sorted(
            (
                Effect(
                    id=int(row["id"]),
                    kind=row["kind"],
                    incident_id=row["incident_id"],
                    payload=json.loads(row["payload"]),
                    attempts=int(row["attempts"]),
                    created_at=utc_from_timestamp(row["created_at"]),
                )
                for row in rows
            ),
            key=lambda effect: effect.id,
        )

    async def deliver_due(self) -> int:
        """Deliver every effect that is due; return how many were delivered."""
        delivered = 0
        self._rounds += 1
        self._idle.clear()
        try:
            while effects := await self._claim():
                for effect in effects:
                    delivered += await self._deliver(effect)
                if len(effects) < self.batch_size:
                    break
        finally:
            self._rounds -= 1
            if self._rounds == 0:
                self._idle.set()
        return delivered

    async def _deliver(self, effect: Effect) -> int:
        handler = self._handlers.get(effect.kind)
        if handler is None:
            await self._finish(effect, failed=f"no handler for effect kind {effect.kind!r}")
            return 0
        try:
            await asyncio.wait_for(handler(effect), timeout=self.handler_timeout)
        except NotifierError as exc:
            if exc.retryable and effect.attempts < self.max_attempts:
                delay = getattr(exc, "retry_after", None) or min(300.0, 2.0**effect.attempts)
                await self._retry_later(effect, str(exc), delay)
                return 0
            await self._finish(effect, failed=str(exc))
            failure = self._on_failure.get(effect.kind)
            if failure is not None:
                await failure(effect, exc)
            return 0
        except TimeoutError:
            await self._retry_later(effect, "timed out", min(300.0, 2.0**effect.attempts))
            return 0
        await self._finish(effect)
        return 1

    async def _retry_later(self, effect: Effect, error: str, delay: float) -> None:
        log.warning("outbox: effect %s (%s) will be retried: %s", effect.id, effect.kind, error)
        available = self.clock.now() + timedelta(seconds=delay)
        async with self.store.transaction() as tx:
            await tx.execute(
                "UPDATE outbox SET claimed_until = NULL, available_at = ?, last_error = ?"
                " WHERE id = ?",
                (available.timestamp(), redact_text(error)[:500], effect.id),
            )

    async def _finish(self, effect: Effect, *, failed: str | None = None) -> None:
        now = self.clock.now().timestamp()
        async with self.store.transaction() as tx:
            if failed is None:
                await tx.execute(
                    "UPDATE outbox SET delivered_at = ? WHERE id = ?", (now, effect.id)
                )
            else:
                log.error("outbox: effect %s (%s) failed: %s", effect.id, effect.kind, failed)
                await tx.execute(
                    "UPDATE outbox SET failed_at = ?, last_error = ? WHERE id = ?",
                    (now, redact_text(failed)[:500], effect.id),
                )

    async def pending_count(self) -> int:
        async with self.store.transaction() as tx:
            row = await tx.fetchone(
                "SELECT COUNT(*) AS n FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL"
            )
        return int(row["n"]) if row else 0

    async def drain(self, timeout: float = 10.0) -> None:
        """Deliver until nothing due is left (tests and the console use this)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            await self._idle.wait()
            if await self.deliver_due():
                continue
            # The background loop may still be delivering an effect this round could not
            # claim, and that effect may queue follow-ups: wait for it, then look again.
            await self._idle.wait()
            if not await self._due_count():
                return
            await asyncio.sleep(0.01)  # held by another process: give it a moment

    async def _due_count(self) -> int:
        now = self.clock.now().timestamp()
        async with self.store.transaction() as tx:
            row = await tx.fetchone(
                "SELECT COUNT(*) AS n FROM outbox WHERE delivered_at IS NULL"
                " AND failed_at IS NULL AND available_at <= ?",
                (now,),
            )
        return int(row["n"]) if row else 0
