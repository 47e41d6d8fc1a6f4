"""How the rest of the bot hears of a remediation request's change: inside its transaction.

Every step of a request (requested, approved by one more person, denied, expired, finished,
closed as outcome unknown) queues its messages through `RemediationService._queue`, which
then tells these listeners in the same transaction, so what they write (an App Home refresh
through the outbox) commits with the change or not at all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from bot.remediation.storage import Request
from bot.store import Tx


class RemediationListener(Protocol):
    """Reacts to a request's change inside the changing transaction; raising rolls it back.
    Work that must wait for the commit (a kick) goes to `tx.after_commit`."""

    async def remediation_changed(self, tx: Tx, request: Request, at: datetime) -> None: ...


class RemediationChanges:
    """The listeners of one RemediationService; the wiring adds them once both are built."""

    def __init__(self) -> None:
        self.listeners: list[RemediationListener] = []

    async def changed(self, tx: Tx, request: Request, at: datetime) -> None:
        """Tell every listener, in order, inside `tx`."""
        for listener in list(self.listeners):
            await listener.remediation_changed(tx, request, at)
