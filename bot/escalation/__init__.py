"""Escalation: reminders planned from the severity matrix, fired once, on time, by any process.

`planner` decides (pure functions), `calendar` counts business time, `storage` holds the
SQL, and `service.EscalationService` plans inside incident transactions and runs the
scheduler.
"""

from bot.escalation.planner import EscalationState, Reminder, ReminderKind, ReminderStatus
from bot.escalation.service import Escalation, EscalationService, FireResult, OnCall

__all__ = [
    "Escalation",
    "EscalationService",
    "EscalationState",
    "FireResult",
    "OnCall",
    "Reminder",
    "ReminderKind",
    "ReminderStatus",
]
