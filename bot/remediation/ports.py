"""How remediation requests reach people: a port, implemented on Slack in bot/slack."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bot.notify import MessageRef
from bot.remediation.storage import Request


class RemediationNotifier(Protocol):
    """Each method renders the request as it is now; NotifierError as for every notifier."""

    async def post_request(
        self, request: Request, *, channel: str, approvers: Sequence[str]
    ) -> MessageRef:
        """Post the approval request (the change, risk, expiry, Approve / Deny) in `channel`,
        naming whom to ask: `approvers`, the users and groups the policy lists."""
        ...

    async def update_request(
        self, request: Request, ref: MessageRef, *, approvers: Sequence[str]
    ) -> None:
        """Edit the request message in place to show its state (approvals, final state)."""
        ...

    async def post_outcome(self, request: Request, ref: MessageRef) -> MessageRef:
        """Reply in the request's thread with its outcome and the target afterwards."""
        ...

    async def tell(self, request: Request, *, user_id: str, why: str = "") -> None:
        """Tell one person by direct message how the request ended (outcome unknown...);
        `why` its request message could not be posted, when it expired meanwhile."""
        ...
