"""Running an approved remediation: the approved -> running step (with its watch reminder),
one execution within the timeout, its outcome, and closing a request whose process died
mid-run as "outcome unknown" (never run again).

The decision that completes the approvals calls `start` inside its own transaction (holding
the request's row lock) and `spawn` after that commit (bot.remediation.service).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime

from bot import metrics
from bot.clock import Clock
from bot.errors import ChatOpsError, StoreUnavailable
from bot.models import SYSTEM, Actor
from bot.outbox import OutboxDispatcher
from bot.policy import Policy
from bot.remediation import actions, recording, timers
from bot.remediation import storage as requests
from bot.remediation.listeners import RemediationChanges
from bot.remediation.plans import Executor, NotApplicable, Outcome, target_for
from bot.remediation.storage import Request, Status
from bot.reminders import storage as reminders
from bot.store import Store, Tx
from bot.targets.errors import TargetError, TargetTimeout

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60.0


class RemediationRunner:
    """Executes the requests this process started, one execution each."""

    def __init__(
        self,
        *,
        changes: RemediationChanges,
        policy: Policy,
        store: Store,
        clock: Clock,
        dispatcher: OutboxDispatcher,
        executors: Mapping[str, Executor],
        timeout: float,
        watch_grace: float,
        owner: str,
    ) -> None:
        self.changes = changes
        self.policy = policy
        self.store = store
        self.clock = clock
        self.dispatcher = dispatcher
        self.executors = executors
        self.timeout = timeout
        self.watch_grace = watch_grace
        self.owner = owner
        self._running: set[asyncio.Task[None]] = set()

    async def start(
        self, tx: Tx, request: Request, actor: Actor, now: datetime, key: str | None
    ) -> Request:
        request = await requests.update(
            tx, request.id, now, status=Status.APPROVED, decided_by=actor.user_id, decided_at=now
        )
        await reminders.cancel_subject(tx, request.subject, now, "approved")
        request = await requests.update(
            tx, request.id, now, status=Status.RUNNING, runner=self.owner, started_at=now
        )
        watch = timers.watch(request, now, self.timeout, self.watch_grace)
        await reminders.insert(tx, None, timers.PLAN, watch, now)
        await recording.record(
            tx,
            self.clock,
            request,
            SYSTEM.user_id,
            "remediation.start",
            "started",
            f"running #{request.id}: {request.preview.summary}",
            {"runner": self.owner, "timeout_s": self.timeout},
            key,
        )
        return request

    def spawn(self, request_id: int) -> None:
        task = asyncio.get_running_loop().create_task(self.run(request_id))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def wait_idle(self) -> None:
        """Wait for the executions this process started (tests, shutdown)."""
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    async def run(self, request_id: int) -> None:
        """Execute a request this process moved to running, within the timeout; record it."""
        # Until then, an outcome the store cannot take is tried again (a blink of the
        # database must not lose it); past it, the watch closes the run as outcome unknown.
        watched_at = asyncio.get_running_loop().time() + self.timeout + self.watch_grace
        async with self.store.transaction() as tx:
            request = await recording.read(tx, request_id)
        if request.status is not Status.RUNNING or request.runner != self.owner:
            return
        try:
            # The policy may have changed since the request (a restart): nothing to run then.
            target = target_for(self.policy, request.action, request.service)
            params = actions.validate(target.spec, request.params)
        except ChatOpsError as exc:
            await self._record(request_id, Outcome(False, "nothing changed", str(exc)), watched_at)
            return
        try:
            async with asyncio.timeout(self.timeout):
                outcome = await self.executors[target.spec.system].execute(
                    target, params, request.preview
                )
        except TimeoutError:
            outcome = Outcome(
                False, f"timed out after {self.timeout:g} s", "not known: check it", known=False
            )
        except TargetTimeout as exc:
            # A change sent without an answer may have been made: never say it failed.
            outcome = Outcome(
                False, f"no answer in time ({exc})", "not known: check it", known=False
            )
        except NotApplicable as exc:
            # Refused before any change was sent (the catalog entry changed since, say).
            outcome = Outcome(False, "nothing changed", str(exc))
        except TargetError as exc:
            outcome = Outcome(False, "failed", str(exc))
        except Exception as exc:  # an executor bug must still close the request
            log.exception("remediation #%s failed", request_id)
            outcome = Outcome(False, "failed", f"internal error ({type(exc).__name__})")
        await self._record(request_id, outcome, watched_at)

    async def _record(self, request_id: int, outcome: Outcome, watched_at: float) -> None:
        """`_finish`, tried again while the store is unavailable, until the watch is due."""
        loop, pause = asyncio.get_running_loop(), 0.2
        while True:
            try:
                await self._finish(request_id, outcome)
                return
            except StoreUnavailable as exc:
                if loop.time() + pause >= watched_at:
                    # The change is not lost from the log, whatever the store will say.
                    log.error(
                        "remediation #%s: its outcome could not be recorded (%s): %s",
                        request_id,
                        exc,
                        outcome.to_json(),
                    )
                    return
                log.warning("remediation #%s: recording its outcome: %s", request_id, exc)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)

    async def _finish(self, request_id: int, outcome: Outcome) -> None:
        now = self.clock.now()
        async with self.store.transaction() as tx:
            request = await recording.read(tx, request_id, lock=True)
            if request.status is not Status.RUNNING or request.runner != self.owner:
                log.warning(
                    "remediation #%s finished after it was closed as %s", request_id, request.status
                )
                return
            status = (
                Status.SUCCEEDED
                if outcome.ok
                else Status.FAILED
                if outcome.known
                else Status.UNKNOWN
            )
            metrics.REMEDIATIONS.labels(request.action, status.value).inc()
            text = outcome.changed + (f" ({outcome.drift})" if outcome.drift else "")
            request = await requests.update(
                tx,
                request.id,
                now,
                status=status,
                finished_at=now,
                outcome=text,
                result=outcome.to_json(),
            )
            await reminders.cancel_subject(tx, request.subject, now, status.value)
            await recording.record(
                tx,
                self.clock,
                request,
                SYSTEM.user_id,
                "remediation.outcome",
                status.value,
                f"#{request.id} {status.value}: {text}; now {outcome.after}",
                {"outcome": outcome.to_json()},
                None,
                outcome=status.value,
            )
            await recording.queue(
                tx,
                self.dispatcher,
                self.changes,
                request,
                now,
                recording.REFRESH,
                recording.OUTCOME,
            )

    async def close_unknown(self, tx: Tx, request: Request, now: datetime) -> Request:
        """running -> unknown: its executor died; tell the requester and the approvers."""
        request = await requests.update(
            tx,
            request.id,
            now,
            status=Status.UNKNOWN,
            finished_at=now,
            outcome="outcome unknown: the bot stopped while it ran; it was not run again",
        )
        await recording.record(
            tx,
            self.clock,
            request,
            SYSTEM.user_id,
            "remediation.outcome",
            "unknown",
            f"#{request.id} outcome unknown: the bot stopped while it ran",
            {"runner": request.runner},
            None,
            outcome="unknown",
        )
        await recording.queue(
            tx, self.dispatcher, self.changes, request, now, recording.REFRESH, recording.OUTCOME
        )
        await recording.queue_tells(tx, request, now)
        return request
