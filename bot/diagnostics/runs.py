"""A diagnosis under way, as the service tells a second asker of it (bot.slack reads it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ValidationError

from bot.errors import Conflict


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
