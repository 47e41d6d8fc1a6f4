"""The extension point: each client of the engine registers the kinds it owns.

The engine claims, locks and closes every reminder the same way (exactly once, restart-safe,
bot.reminders.firing); for what firing *means* it asks the handler registered under the
reminder's kind. Escalation registers its pages, breaches and update/review reminders,
remediation its expiry and watch, follow-ups (bot.reports) the action-item reminder.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bot.incidents.changes import Change
from bot.models import Incident
from bot.reminders.model import PlannedReminder, Reminder, ReminderStatus


@dataclass(frozen=True, slots=True)
class Firing:
    """What a handler did: FIRED or SKIPPED, why (the stored `outcome`), and the reminder
    to plan next, if any, in plan `plan` (None: the fired reminder's own plan)."""

    status: ReminderStatus
    outcome: str
    follow_up: PlannedReminder | None = None
    plan: int | None = None


class ReminderKindHandler(Protocol):
    """What firing one kind of reminder means. The contract:

    - `fire` is called once per claim, inside the firing transaction (`change.tx`, at
      `change.now`), after the engine has checked the reminder is still claimed by this
      process. When the reminder names an incident, that incident row is locked first (the
      lock order of every lifecycle change) and passed in; a reminder about a `subject`
      alone gets `incident` None and locks what its subject names itself.
    - It re-checks its own state (a stale reminder returns SKIPPED with the reason), writes
      its changes and queues its notifications in the outbox through `change`, and returns
      what it did. It never closes the reminder: the engine records the returned status and
      outcome, and plans `follow_up` in the same transaction (handing it to the scheduler
      after the commit).
    - It may raise: the transaction rolls back and the claim is handed back for a retry,
      so everything it wrote must live in that transaction.
    - Reminders fire in batches, several in one transaction (bot.reminders.firing): the
      timeline lines and outbox effects it records are written just before the commit, so
      it must not read them back in the same transaction. If its firing raises, the batch
      is retried one reminder per transaction.
    """

    async def fire(self, change: Change, reminder: Reminder, incident: Incident | None) -> Firing:
        """Fire (or skip) `reminder`; see the class docstring for the contract."""
        ...


@runtime_checkable
class PreparesBatch(Protocol):
    """A handler that also reads what a batch's firings need at once, before any fires."""

    async def prepare(
        self, change: Change, reminders: Sequence[Reminder], incidents: Mapping[str, Incident]
    ) -> None:
        """Called once per batch with its reminders of the handler's kinds (still claimed)
        and the batch's locked incidents, before `fire` is called for each."""
        ...


class Kinds:
    """The registry: a kind's name -> its handler. One owner per kind."""

    def __init__(self) -> None:
        self._handlers: dict[str, ReminderKindHandler] = {}

    def register(self, kinds: Iterable[str], handler: ReminderKindHandler) -> None:
        """Let `handler` fire the reminders of `kinds`; a kind already owned is refused."""
        for kind in kinds:
            name = str(kind)
            owner = self._handlers.get(name)
            if owner is not None and owner is not handler:
                raise ValueError(f"reminder kind {name!r} already has a handler")
            self._handlers[name] = handler

    def get(self, kind: str) -> ReminderKindHandler | None:
        return self._handlers.get(str(kind))

    def __iter__(self) -> Iterator[str]:
        return iter(self._handlers)
