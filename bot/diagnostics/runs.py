"""A diagnosis under way, as the service tells a second asker of it (bot.slack reads it),
and its hold in the coordinator, shared by every replica and the command line."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ValidationError

from bot.coordination.base import Coordinator
from bot.errors import Conflict, CoordinatorUnavailable

log = logging.getLogger(__name__)

# A run's shared hold outlives its slowest check by this much (planning, the "Diagnosing"
# reply, recording): a replica that crashed mid-run frees the service by itself after that.
HOLD_MARGIN = 60.0

# A run's identity: the service and its checks as the catalog names them (sorted, once each).
RunKey = tuple[str, tuple[str, ...]]


def run_key(service: str, checks: Sequence[str]) -> RunKey:
    return service.lower(), tuple(sorted({c.lower() for c in checks}))


def _hold_key(key: RunKey) -> str:
    return f"diagnosis:{key[0]}:{','.join(key[1])}"


@dataclass(frozen=True, slots=True)
class RunningDiagnosis:
    """A diagnosis under way in this process or (with Redis) another replica: who started it,
    when, and where its summary will be posted (None: answered to the asker alone)."""

    service: str
    checks: tuple[str, ...]
    actor: str
    started_at: datetime
    channel_id: str | None

    @property
    def on_terminal(self) -> bool:
        """Run by `chatops-bot diagnose` (actor `cli:<login>`): printed there, never posted."""
        return self.actor.startswith(CLI_ACTOR_PREFIX)


# The actor of a run from the command line: `cli:` and the login of who ran it.
CLI_ACTOR_PREFIX = "cli:"


class DiagnosisRunning(Conflict):
    """The same diagnosis (service and checks) is already running: no second run starts."""

    def __init__(self, running: RunningDiagnosis) -> None:
        super().__init__(f"A diagnosis of {running.service} is already running.")
        self.running = running


class _Held(BaseModel):
    """A run as its replica holds it in the coordinator (`run` tells two runs apart)."""

    run: str
    service: str
    checks: tuple[str, ...]
    actor: str
    started_at: datetime
    channel_id: str | None


def held_value(running: RunningDiagnosis, run: str) -> str:
    """The JSON a replica holds for its run `run` (unique: it frees only its own)."""
    return _Held(
        run=run,
        service=running.service,
        checks=running.checks,
        actor=running.actor,
        started_at=running.started_at,
        channel_id=running.channel_id,
    ).model_dump_json()


def held_run(value: str) -> RunningDiagnosis | None:
    """The run another replica holds, from its value; None when it cannot be read."""
    try:
        held = _Held.model_validate_json(value)
    except ValidationError:
        return None
    return RunningDiagnosis(held.service, held.checks, held.actor, held.started_at, held.channel_id)


class SharedHolds:
    """Runs held for every replica in the coordinator (Redis), one per service and checks."""

    def __init__(self, coordinator: Coordinator | None) -> None:
        self.coordinator = coordinator
        # Releases under way, kept until done: a cancelled run does not wait for its own.
        self._releasing: set[asyncio.Future[bool]] = set()
        # Holds whose claim got no answer (Redis down or slow): perhaps never taken, so a
        # failed release of one is no news (it was logged when the claim failed).
        self._unanswered: set[str] = set()

    async def take(
        self, key: RunKey, running: RunningDiagnosis, ttl: float, *, refuse: bool
    ) -> str | None:
        """Hold the run for `ttl` seconds: the value to release when the run ends (held, or
        perhaps held: Redis took the claim but its answer was lost), or None when nothing of
        this run's is held (no coordinator, the bot's own run of one held elsewhere).
        DiagnosisRunning when another replica holds it and `refuse`. Cancelled meanwhile, it
        releases what it may have claimed before it gives up."""
        if self.coordinator is None:
            return None
        value = held_value(running, uuid.uuid4().hex)
        try:
            holder = await self.coordinator.hold(_hold_key(key), value, ttl)
        except CoordinatorUnavailable as exc:
            # No answer in time may still be a claim that landed: released with the run, or
            # the next request would be told it runs until the TTL (it frees only our value).
            log.warning("diagnosis of %s runs unshared with other replicas: %s", key[0], exc)
            self._unanswered.add(value)
            return value
        except asyncio.CancelledError:
            # Cut short while Redis had the claim (the alert path's timeout): free it now.
            await self.release(key, value)
            raise
        if holder is None:
            return value
        other = held_run(holder)
        if other is None:
            log.warning("diagnosis of %s: unreadable hold %.200r, running anyway", key[0], holder)
        elif refuse:
            raise DiagnosisRunning(other)
        return None

    async def release(self, key: RunKey, value: str) -> None:
        """Free this run's hold (compare-and-delete: never another run's), shielded from a
        cancellation of the run: cut short, the release still reaches Redis."""
        if self.coordinator is None:  # only a coordinator's hold has a value
            return
        release = asyncio.ensure_future(self.coordinator.release(_hold_key(key), value))
        self._releasing.add(release)
        release.add_done_callback(self._released)
        try:
            await asyncio.shield(release)
        except CoordinatorUnavailable as exc:  # its TTL frees it
            unanswered = value in self._unanswered
            log.log(
                logging.DEBUG if unanswered else logging.WARNING,
                "diagnosis of %s: hold not released: %s",
                key[0],
                exc,
            )
        finally:
            self._unanswered.discard(value)

    def _released(self, release: asyncio.Future[bool]) -> None:
        self._releasing.discard(release)
        # Retrieved here too: a run cancelled while it waited did not read its failure.
        if not release.cancelled() and release.exception() is not None:
            log.debug("hold release failed: %s", release.exception())
