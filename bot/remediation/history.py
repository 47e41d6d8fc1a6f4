"""What the reports read of remediation: an incident's runs (the post-incident report) and
the requests waiting for one person's approval (the App Home). Implements the
seams bot.reports.models.RemediationHistory and bot.home.models.ApprovalsWaiting. And the
request messages a front end that lost its workspace shows again (the console's next
session: bot.console.earlier)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.clock import Clock, utc_from_timestamp
from bot.models import SYSTEM, Actor
from bot.permissions import Permissions
from bot.policy import Policy
from bot.remediation import actions, approval, recovery_storage
from bot.remediation import storage as requests
from bot.remediation.read_models import ApprovalWaiting, RemediationRun
from bot.remediation.storage import Request, Status
from bot.store import Store

WAITING_SCAN = 200  # requests looked at per Home view; the oldest waiting first

_OUTCOME = {
    Status.REQUESTED: "waiting for approval",
    Status.APPROVED: "approved",
    Status.RUNNING: "running",
    Status.DENIED: "denied",
    Status.EXPIRED: "expired without approval",
}


@dataclass(frozen=True, slots=True)
class RequestShown:
    """A request message to show again as the request stands, naming whom to ask as the
    delivery does; `expired` once its time for approval has run out (its expiry reminder
    has not fired yet: the message is edited when it does)."""

    request: Request
    approvers: tuple[str, ...]
    expired: bool


class RemediationRecords:
    def __init__(
        self, *, store: Store, clock: Clock, policy: Policy, permissions: Permissions
    ) -> None:
        self.store = store
        self.clock = clock
        self.policy = policy
        self.permissions = permissions

    async def runs(self, incident_id: str) -> Sequence[RemediationRun]:
        """Each request of the incident with its approvers and outcome, and each restart
        automatic recovery made while it was open, in time order."""
        async with self.store.transaction() as tx:
            made = await requests.for_incident(tx, incident_id)
            restarts = await recovery_storage.for_incident(tx, incident_id)
        runs = [
            (
                request.requested_at,
                RemediationRun(
                    action=request.action,
                    target=request.service,
                    requested_by=request.requested_by,
                    approvers=request.approvals,
                    outcome=_OUTCOME.get(request.status)
                    or f"{request.status.value}: {request.outcome}",
                    finished_at=request.finished_at or request.decided_at,
                ),
            )
            for request in made
        ]
        for row in restarts:
            finished = row.get("finished_at")
            runs.append(
                (
                    utc_from_timestamp(float(row["at"])),
                    RemediationRun(
                        action=f"{row.get('action') or 'kubernetes.restart'} (automatic recovery)",
                        target=f"{row['service']}/{row['deployment']}"
                        + (f" pods {row['pods']}" if row.get("pods") else ""),
                        requested_by=SYSTEM.user_id,
                        approvers=(),
                        outcome=f"{row['status']}: {row['outcome'] or row['reason']}",
                        finished_at=utc_from_timestamp(float(finished)) if finished else None,
                    ),
                )
            )
        return [run for _, run in sorted(runs, key=lambda pair: pair[0])]

    async def waiting_for(self, user_id: str) -> Sequence[ApprovalWaiting]:
        """Requests still waiting that `user_id` may approve: not their own, not yet approved
        by them, not expired; oldest first."""
        now = self.clock.now()
        async with self.store.transaction() as tx:
            waiting = await requests.waiting_for(tx, WAITING_SCAN)
        actor = Actor(user_id)
        shown = []
        for request in waiting:
            if (
                request.expires_at <= now
                or request.requested_by == user_id
                or user_id in request.approvals
            ):
                continue
            if not await approval.may_approve(
                self.permissions, actor, actions.spec_for(request.action)
            ):
                continue
            shown.append(
                ApprovalWaiting(
                    request_id=request.id,
                    action=request.action,
                    service=request.service,
                    summary=request.preview.summary,
                    risk=request.risk,
                    requested_by=request.requested_by,
                    expires_at=request.expires_at,
                    approvals=len(request.approvals),
                    approvals_needed=request.approvals_needed,
                    incident_id=request.incident_id,
                )
            )
        return shown

    async def requests_to_show(self) -> Sequence[RequestShown]:
        """The requests still waiting for approval whose message was posted, oldest first;
        `expired` those whose time has run out (their expiry reminder not yet fired: a
        front end reads them before its bot starts)."""
        now = self.clock.now()
        async with self.store.transaction() as tx:
            found = await requests.posted_and_waiting(tx)
        shown = []
        for request in found:
            approvers = approval.approvers_named(self.policy.roles, request.action)
            shown.append(RequestShown(request, tuple(approvers), request.expires_at <= now))
        return shown
