"""A diagnosis under way, as the service tells a second asker of it (bot.slack reads it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.errors import Conflict


@dataclass(frozen=True, slots=True)
class RunningDiagnosis:
    """A diagnosis under way in this process: who started it, when, and where its summary
    will be posted (None: answered to the asker alone, from the App Home)."""

    service: str
    checks: tuple[str, ...]
    actor: str
    started_at: datetime
    channel_id: str | None


class DiagnosisRunning(Conflict):
    """The same diagnosis (service and checks) is already running: no second run starts."""

    def __init__(self, running: RunningDiagnosis) -> None:
        super().__init__(f"A diagnosis of {running.service} is already running.")
        self.running = running
