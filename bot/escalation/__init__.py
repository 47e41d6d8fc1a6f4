"""Escalation: reminders planned from the severity matrix, fired once, on time, by any process.

`planner` decides (pure functions), `calendar` counts business time, `storage` holds the
SQL. `planning` writes the plan inside each incident change, `scheduling` triggers,
`firing` fires each reminder once, `manual` escalates by hand, `delivery` posts to Slack
after the commit, `oncall` answers `/oncall`; `service.EscalationService` assembles them.
"""

from bot.escalation.firing import FireResult
from bot.escalation.manual import Escalation
from bot.escalation.oncall import OnCall
from bot.escalation.planner import EscalationState, Reminder, ReminderKind, ReminderStatus
from bot.escalation.service import EscalationService

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
