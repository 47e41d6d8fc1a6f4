"""The approval policy: who may request and who may approve an action, and how many must.

Rules (the policy's `roles`):
- Requesters: `roles.remediation.<action>.requesters`, else `roles.remediation.<risk>.
  requesters`, else `roles.requesters`, else `roles.responders`. Empty means everyone.
- Approvers: likewise through `.approvers`, ending at `roles.approvers`. Empty means NOBODY:
  a remediation must never run because a list was forgotten.
- The requester never approves their own request; one person approves once.
- High-risk actions need `roles.high_risk_approvals` distinct approvers; others need one.
"""

from __future__ import annotations

from bot.errors import NotifierError
from bot.models import Actor
from bot.permissions import Permissions
from bot.policy import Roles
from bot.remediation.actions import ACTIONS, ActionSpec, Risk


def requesters(roles: Roles, spec: ActionSpec) -> list[str]:
    for key in (spec.name, spec.risk.value):
        entry = roles.remediation.get(key)
        if entry is not None and entry.requesters is not None:
            return list(entry.requesters)
    return list(roles.requesters if roles.requesters is not None else roles.responders)


def approvers(roles: Roles, spec: ActionSpec) -> list[str]:
    for key in (spec.name, spec.risk.value):
        entry = roles.remediation.get(key)
        if entry is not None and entry.approvers is not None:
            return list(entry.approvers)
    return list(roles.approvers)


def approvers_named(roles: Roles, action: str) -> list[str]:
    """Whom a request message of `action` names to ask, as the policy lists them now (none
    for an action this version no longer knows)."""
    spec = ACTIONS.get(action)
    return [] if spec is None else approvers(roles, spec)


def approvals_needed(roles: Roles, spec: ActionSpec) -> int:
    return roles.high_risk_approvals if spec.risk is Risk.HIGH else 1


async def may_request(permissions: Permissions, actor: Actor, spec: ActionSpec) -> bool:
    allowed = requesters(permissions.policy.roles, spec)
    return await permissions.listed(actor, allowed, empty_means_everyone=True)


async def may_approve(permissions: Permissions, actor: Actor, spec: ActionSpec) -> bool:
    allowed = approvers(permissions.policy.roles, spec)
    return await permissions.listed(actor, allowed, empty_means_everyone=False)


async def approver_ids(permissions: Permissions, spec: ActionSpec) -> list[str]:
    """Every user who may approve `spec` (user groups expanded), to tell them things."""
    return await permissions.expand(approvers(permissions.policy.roles, spec))


async def too_few_approvers(permissions: Permissions, spec: ActionSpec, requester: str) -> str:
    """Why a request of `spec` by `requester` could never be approved, or "" when it could
    (or when a user group cannot be read, so nobody can tell)."""
    needed = approvals_needed(permissions.policy.roles, spec)
    try:
        users = await approver_ids(permissions, spec)
    except NotifierError:
        return ""
    others = [user for user in users if user != requester]
    if len(others) >= needed:
        return ""
    if not others:
        listed = approvers(permissions.policy.roles, spec)
        who = "nobody else may approve it" + ("" if listed else " (the policy lists no approvers)")
    else:
        who = (
            f"only {len(others)} other {'person' if len(others) == 1 else 'people'} may approve it"
        )
    approvals = "1 approval" if needed == 1 else f"{needed} approvals"
    return (
        f"{spec.name} needs {approvals} from people other than you, and {who}."
        " Ask someone who may to request it, or fix the policy's approvers."
    )
