"""How each step of a remediation request is written down, whoever takes it (requesting,
deciding, running): the audit entry (and the incident's timeline line when there is one),
the request's outbox messages, and reading the request for a step.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot import audit, outbox
from bot.audit import AuditRecord
from bot.clock import Clock
from bot.errors import NotFound
from bot.incidents import journal
from bot.outbox import OutboxDispatcher
from bot.remediation import storage as requests
from bot.remediation.listeners import RemediationChanges
from bot.remediation.storage import Request
from bot.store import Tx

# Outbox effect kinds (bot.remediation.delivery delivers them).
POST = "remediation.post"
REFRESH = "remediation.refresh"
OUTCOME = "remediation.outcome"
TELL = "remediation.tell"


async def read(tx: Tx, request_id: int, *, lock: bool = False) -> Request:
    """The request (locked until the commit with `lock`); NotFound otherwise."""
    request = await requests.get(tx, request_id, lock=lock)
    if request is None:
        raise NotFound(f"No remediation request #{request_id}.")
    return request


async def queue(
    tx: Tx,
    dispatcher: OutboxDispatcher,
    changes: RemediationChanges,
    request: Request,
    now: datetime,
    *kinds: str,
) -> None:
    """Queue the request's messages (`kinds`) with the change, delivered once committed, and
    tell the listeners (the App Home's refreshes) in the same transaction."""
    for kind in kinds:
        await outbox.enqueue(tx, now, kind, {"request_id": request.id}, lane=request.incident_id)
    tx.after_commit(dispatcher.kick)
    await changes.changed(tx, request, now)


async def queue_tells(tx: Tx, request: Request, now: datetime, *, why: str = "") -> None:
    """Tell the requester and each approver privately (TELL), each as an effect of its own so
    a failed DM is retried without sending the others again; `why` the message was missing."""
    for user in dict.fromkeys([request.requested_by, *request.approvals]):
        payload: dict[str, Any] = {"request_id": request.id, "user_id": user}
        if why:
            payload["why"] = why
        await outbox.enqueue(tx, now, TELL, payload, lane=request.incident_id)


async def record(
    tx: Tx,
    clock: Clock,
    request: Request,
    actor: str,
    action: str,
    kind: str,
    line: str,
    args: dict[str, Any],
    request_key: str | None,
    *,
    outcome: str = "ok",
) -> None:
    """The audit entry, and on the incident's timeline too when there is one (a dry run
    is audited only: its result is the request line)."""
    args = {"request": request.id, "action": request.action, "service": request.service, **args}
    now = clock.now()
    if request.incident_id and line:
        await journal.record(
            tx,
            now,
            request.incident_id,
            actor=actor,
            kind=f"remediation_{kind}",
            # What the systems returned (a session's application_name, a role's name) is in
            # the line: kept as text, never read as mentions or markup.
            text=(line,),
            said=line,
            action=action,
            args=args,
            outcome=outcome,
            data={"request": request.id},
            request_id=request_key,
        )
        return
    await audit.append(
        tx,
        now,
        AuditRecord(
            actor=actor,
            action=action,
            target=request.subject,
            outcome=outcome,
            args=args,
            incident_id=request.incident_id,
            request_id=request_key,
        ),
    )
