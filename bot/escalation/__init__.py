"""Escalation: the severity matrix's pages, breaches and reminders, a client of the reminder
engine (bot.reminders), which fires each of its reminders once, on time, by any process.

`planner` decides (pure functions), `storage` holds escalation's own SQL (its state, page
recipients), `planning` writes the plan inside each incident change, `firing` is the
handler of escalation's kinds, `manual` escalates by hand, `delivery` posts to Slack after
the commit, `oncall` answers `/oncall`; `service.EscalationService` assembles them.
"""

from bot.escalation.manual import AlreadyEscalated, Escalation, SeverityChanged
from bot.escalation.oncall import OnCall
from bot.escalation.planner import EscalationState, ReminderKind
from bot.escalation.service import EscalationService

__all__ = [
    "AlreadyEscalated",
    "Escalation",
    "EscalationService",
    "EscalationState",
    "OnCall",
    "ReminderKind",
    "SeverityChanged",
]
