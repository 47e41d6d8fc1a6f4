"""Action-item reminders: follow-ups' own kind, fired through the reminder engine.

Rules (pure: `first_reminder`, `next_reminder`):
- An action item is reminded to its owner when it comes due (`due_at`).
- While it stays open it is reminded again every `reviews.action_items_every` (business
  days count on the calendar); a reminder fired late (the bot was down) counts the next one
  from now, never a burst.
- Only the first reminder (the one due when the item is) writes a timeline line; every
  reminder writes its audit entry.
- Closing the item cancels its pending reminder in the same transaction, and firing
  re-reads the item under the incident's lock, so nothing is sent for a closed item.

One pending reminder per item: kind `action_item`, about the incident, with the item as its
`subject` ("action_item:<id>"; the engine's unique index on (incident, kind, level,
subject) for pending rows then holds one per item).
"""

from __future__ import annotations

from datetime import datetime

from bot import audit, outbox, refs
from bot.audit import AuditRecord
from bot.incidents import journal
from bot.incidents.changes import Change
from bot.models import SYSTEM, Incident
from bot.policy import Policy
from bot.reminders import storage as reminders
from bot.reminders.calendar import due_after
from bot.reminders.engine import ReminderEngine
from bot.reminders.kinds import Firing
from bot.reminders.model import PlannedReminder, Reminder, ReminderStatus
from bot.reports import storage
from bot.reports.models import ActionItem
from bot.store import Tx

ACTION_ITEM = "action_item"  # the reminder kind follow-ups own
ACTION_REMIND = "reports.action_item_remind"  # outbox effect: one DM to the owner
REMINDER_ACTION = "reports.action_item_reminder"  # its audit entry
_PLAN = 0  # action-item reminders belong to no escalation plan


def subject_of(item_id: int) -> str:
    """The reminder's reference to the item."""
    return f"{ACTION_ITEM}:{item_id}"


def item_id_of(reminder: Reminder) -> int | None:
    """The item a reminder is about (None: not an action-item reference)."""
    prefix, _, number = (reminder.subject or "").partition(":")
    return int(number) if prefix == ACTION_ITEM and number.isdigit() else None


def first_reminder(item: ActionItem) -> PlannedReminder:
    """The item's first reminder: when it comes due, to its owner."""
    return PlannedReminder(
        ACTION_ITEM, item.due_at, notify=(item.owner,), subject=subject_of(item.id)
    )


def next_reminder(item: ActionItem, after: datetime, now: datetime, policy: Policy) -> datetime:
    """When the open item is reminded next, after a reminder due at `after` fired at `now`."""
    cadence = policy.reviews.action_items_every
    due = due_after(after, cadence, policy.calendar)
    if due <= now:
        due = due_after(now, cadence, policy.calendar)
    return due


async def plan(tx: Tx, item: ActionItem, now: datetime) -> int:
    """Plan the item's first reminder, when it comes due."""
    return await reminders.insert(tx, item.incident_id, _PLAN, first_reminder(item), now)


async def cancel(tx: Tx, item: ActionItem, now: datetime, why: str) -> int:
    """Withdraw the item's live reminder (pending, or claimed and about to fire)."""
    return await reminders.cancel_subject(tx, subject_of(item.id), now, why)


class ActionItemReminders:
    """The engine's handler for `action_item` reminders."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def register(self, engine: ReminderEngine) -> None:
        engine.register([ACTION_ITEM], self)

    async def fire(self, change: Change, reminder: Reminder, incident: Incident | None) -> Firing:
        """Remind the owner of an open item (a DM through the outbox) and plan the next."""
        tx, now = change.tx, change.now
        item_id = item_id_of(reminder)
        item = await storage.get_item(tx, item_id, lock=True) if item_id is not None else None
        if item is None or incident is None or item.incident_id != incident.id:
            return Firing(ReminderStatus.SKIPPED, "no such action item")
        if not item.is_open:
            return Firing(ReminderStatus.SKIPPED, "closed")
        if reminder.due_at > now:
            return Firing(ReminderStatus.SKIPPED, "not due yet")
        overdue = now >= item.due_at and reminder.due_at > item.due_at
        await outbox.enqueue(
            tx,
            now,
            ACTION_REMIND,
            {"item_id": item.id, "reminder_id": reminder.id, "overdue": overdue},
            lane=incident.id,
        )
        state = "overdue" if overdue else "due"
        args = {"item_id": item.id, "owner": item.owner, "due_at": item.due_at.isoformat()}
        data = {"reminder_id": reminder.id, "reminder": ACTION_ITEM}
        if reminder.due_at <= item.due_at:
            # The first reminder goes on the timeline: the item came due. The repeats would
            # add a line every business day for as long as it stays open, filling the
            # report's Timeline and pushing real events out of the catch-up.
            await journal.record(
                tx,
                now,
                incident.id,
                actor=SYSTEM.user_id,
                kind="reminded",
                text=refs.text(
                    "Reminded ",
                    refs.Person(item.owner),
                    f" that action item #{item.id} is {state}: {item.text}",
                ),
                action=REMINDER_ACTION,
                args=args,
                data=data,
            )
        else:  # a repeat: proof in the audit log, no timeline line
            record = AuditRecord(
                actor=SYSTEM.user_id,
                action=REMINDER_ACTION,
                target=incident.id,
                outcome="ok",
                args=args | {"repeat": True},
                incident_id=incident.id,
            )
            await audit.append(tx, now, record)
        follow_up = PlannedReminder(
            ACTION_ITEM,
            next_reminder(item, reminder.due_at, now, self.policy),
            notify=(item.owner,),
            subject=subject_of(item.id),
        )
        return Firing(ReminderStatus.FIRED, f"reminded ({state})", follow_up)
