"""The Notifier port: how services reach people. Slack is one implementation.

Contract: each method delivers one notification and returns where it landed (if anywhere),
or raises NotifierError with `retryable` set for transient failures (rate limits, 5xx,
network) and cleared for permanent ones (unknown channel, missing scope). Methods take
domain objects and render them themselves, so services never build Slack payloads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.models import Incident


@dataclass(frozen=True, slots=True)
class MessageRef:
    channel: str
    ts: str


class Notifier(Protocol):
    async def announce_incident(self, incident: Incident, *, channel: str) -> MessageRef:
        """Post the declaration, in the communication template, to `channel`."""
        ...

    async def report_failure(
        self, incident: Incident, *, user_id: str, step: str, target: str | None, error: str
    ) -> None:
        """Tell one person (by direct message) that a step of `incident` failed for good.

        `step` names what failed ("announce", "create_channel", ...), `target` the channel or
        user it was aimed at, `error` the error code. The incident itself stands.
        """
        ...
