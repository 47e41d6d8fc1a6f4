"""The outbox's effects not delivered: retried after a back-off while the far side may come
back, failed (and their kinds' failure handlers told) once it will not."""

from __future__ import annotations

import logging
from datetime import timedelta

from bot import metrics
from bot.background import jitter
from bot.clock import Clock
from bot.errors import NotifierError
from bot.outbox.queue import Effect, FailureHandler
from bot.redact import redact_text
from bot.store import Store

log = logging.getLogger(__name__)

GIVE_UP_AFTER = timedelta(hours=24)


class Failures:
    """What becomes of an effect whose handler did not deliver it."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        max_attempts: int,
        give_up_after: timedelta,
        max_backoff: float,
    ) -> None:
        self.store = store
        self.clock = clock
        self.max_attempts = max_attempts
        self.give_up_after = give_up_after
        self.max_backoff = max_backoff
        self.on_failure: dict[str, FailureHandler] = {}

    async def not_delivered(
        self, effect: Effect, error: NotifierError, *, unexpected: bool = False
    ) -> None:
        """`effect`'s handler failed with `error`: retried later, or failed for good (and its
        kind's failure handler told); `unexpected`: an error of our own, not the far side's."""
        if error.retryable and error.retry_after is not None:
            # The far side said when to come back (a rate limit): that is no failed attempt.
            await self._retry_later(effect, str(error), max(1.0, error.retry_after), counted=False)
            return
        if error.retryable and self._may_retry(effect, unexpected=unexpected):
            await self._retry_later(effect, str(error), self._backoff(effect))
            return
        await self.fail(effect, str(error))
        failure = self.on_failure.get(effect.kind)
        if failure is not None:
            await failure(effect, error)

    def _may_retry(self, effect: Effect, *, unexpected: bool) -> bool:
        """A transient failure of the far side (an outage) is retried until the effect is
        `give_up_after` old: it delays the message, it does not lose it. An unexpected error
        of our own is tried `max_attempts` times."""
        if unexpected:
            return effect.attempts < self.max_attempts
        return self.clock.now() - effect.created_at < self.give_up_after

    def _backoff(self, effect: Effect) -> float:
        """About 2 s after the first attempt, then doubling, up to `max_backoff`; jittered so
        that effects failed by one outage are not all retried in the same second."""
        return jitter(min(self.max_backoff, 2.0**effect.attempts))

    async def _retry_later(
        self, effect: Effect, error: str, delay: float, *, counted: bool = True
    ) -> None:
        metrics.OUTBOX_EFFECTS.labels(effect.kind, "retry").inc()
        log.warning("outbox: effect %s (%s) will be retried: %s", effect.id, effect.kind, error)
        available = self.clock.now() + timedelta(seconds=delay)
        async with self.store.transaction() as tx:
            await tx.execute(
                "UPDATE outbox SET claimed_until = NULL, available_at = ?, last_error = ?,"
                " attempts = attempts - ? WHERE id = ?",
                (available.timestamp(), redact_text(error)[:500], 0 if counted else 1, effect.id),
            )

    async def fail(self, effect: Effect, failed: str) -> None:
        """Mark `effect` failed for good, with why."""
        now = self.clock.now().timestamp()
        metrics.OUTBOX_EFFECTS.labels(effect.kind, "failed").inc()
        log.error("outbox: effect %s (%s) failed: %s", effect.id, effect.kind, failed)
        async with self.store.transaction() as tx:
            await tx.execute(
                "UPDATE outbox SET failed_at = ?, last_error = ? WHERE id = ?",
                (now, redact_text(failed)[:500], effect.id),
            )
