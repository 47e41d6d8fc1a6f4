"""Action-item reminders, fired by the escalation engine from its reminder store.

Rules (pure: `next_reminder`):
- An action item is reminded to its owner when it comes due (`due_at`).
- While it stays open it is reminded again every `reviews.action_items_every` (business
  days count on the calendar); a reminder fired late (the bot was down) counts the next one
  from now, never a burst.
- Closing the item cancels its pending reminder in the same transaction, and firing
  re-reads the item under the incident's lock, so nothing is sent for a closed item.

One pending reminder per item: kind `action_item`, `level` = the item's id (the engine's
unique index on (incident, kind, level) for pending rows then holds one per item).
"""

from __future__ import annotations

from datetime import datetime

from bot import outbox
from bot.escalation import storage as reminders
from bot.escalation.calendar import due_after
from bot.escalation.extensions import Firing
from bot.escalation.planner import PlannedReminder, Reminder, ReminderKind, ReminderStatus
from bot.incidents import journal
from bot.models import SYSTEM, Incident
from bot.policy import Policy
from bot.reports import storage
from bot.reports.models import ActionItem
from bot.store import Tx

ACTION_REMIND = "reports.action_item_remind"  # outbox effect: one DM to the owner
_PLAN = 0  # action-item reminders belong to no escalation plan


def next_reminder(item: ActionItem, after: datetime, now: datetime, policy: Policy) -> datetime:
    """When the open item is reminded next, after a reminder due at `after` fired at `now`."""
    cadence = policy.reviews.action_items_every
    due = due_after(after, cadence, policy.calendar)
    if due <= now:
        due = due_after(now, cadence, policy.calendar)
    return due


async def plan(tx: Tx, item: ActionItem, now: datetime) -> int:
    """Plan the item's first reminder, when it comes due."""
    planned = PlannedReminder(ReminderKind.ACTION_ITEM, item.due_at, item.id, (item.owner,))
    return await reminders.insert(tx, item.incident_id, _PLAN, planned, now)


async def cancel(tx: Tx, item: ActionItem, now: datetime, why: str) -> int:
    """Withdraw the item's live reminder (pending, or claimed and about to fire)."""
    return await tx.execute(
        "UPDATE reminders SET status = 'cancelled', closed_at = ?, outcome = ?"
        " WHERE incident_id = ? AND kind = ? AND level = ? AND status IN ('pending', 'firing')",
        (now.timestamp(), why, item.incident_id, ReminderKind.ACTION_ITEM.value, item.id),
    )


class ActionItemReminders:
    """The escalation engine's handler for `action_item` reminders."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    async def fire(self, tx: Tx, reminder: Reminder, incident: Incident, now: datetime) -> Firing:
        """Remind the owner of an open item (a DM through the outbox) and plan the next."""
        item = await storage.get_item(tx, reminder.level, lock=True)
        if item is None or item.incident_id != incident.id:
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
        await journal.record(
            tx,
            now,
            incident.id,
            actor=SYSTEM.user_id,
            kind="reminded",
            text=f"Reminded <@{item.owner}> that action item #{item.id} is {state}: {item.text}",
            action="reports.action_item_reminder",
            args={"item_id": item.id, "owner": item.owner, "due_at": item.due_at.isoformat()},
            data={"reminder_id": reminder.id, "reminder": ReminderKind.ACTION_ITEM.value},
        )
        follow_up = PlannedReminder(
            ReminderKind.ACTION_ITEM,
            next_reminder(item, reminder.due_at, now, self.policy),
            item.id,
            (item.owner,),
        )
        return Firing(ReminderStatus.FIRED, f"reminded ({state})", follow_up)
