"""The store-backed timer engine: durable reminders, fired once, on time, by any process.

`model` is the data, `storage` the SQL, `calendar` counts business time, `scheduling`
triggers, `firing` claims and fires each reminder exactly once, `kinds` is the extension
point (a kind's name -> the handler its owner registers); `engine.ReminderEngine` assembles
them. Its clients each own their kinds: escalation (bot.escalation), remediation expiry and
watch (bot.remediation.timers), follow-ups (bot.reports.followups).
"""

from bot.reminders.engine import ReminderEngine
from bot.reminders.firing import FireResult
from bot.reminders.kinds import Firing, ReminderKindHandler
from bot.reminders.model import PlannedReminder, Reminder, ReminderStatus

__all__ = [
    "FireResult",
    "Firing",
    "PlannedReminder",
    "Reminder",
    "ReminderEngine",
    "ReminderKindHandler",
    "ReminderStatus",
]
