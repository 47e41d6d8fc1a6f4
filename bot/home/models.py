"""Plain data for the App Home: what one person's Home shows, and the approvals waiting."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.models import Incident, Severity
from bot.remediation.read_models import ApprovalWaiting
from bot.reports.models import ActionItem


class ApprovalsWaiting(Protocol):
    """The App Home's "approvals waiting for you": requests still waiting that this person
    may approve (not their own, not already approved by them), oldest first."""

    async def waiting_for(self, user_id: str) -> Sequence[ApprovalWaiting]: ...


@dataclass(frozen=True, slots=True)
class HomeFacts:
    """What one person's App Home shows; lists are capped, counts are not."""

    user_id: str
    generated_at: datetime
    mine: tuple[tuple[Incident, tuple[str, ...]], ...]  # (incident, the viewer's roles)
    mine_total: int  # open incidents naming the viewer, however many `mine` lists
    open_incidents: tuple[Incident, ...]  # most urgent first, at most `shown`
    open_total: int
    open_by_severity: dict[Severity, int]
    action_items: tuple[ActionItem, ...]
    action_items_total: int
    approvals: tuple[ApprovalWaiting, ...] | None = None  # None: remediation not wired
