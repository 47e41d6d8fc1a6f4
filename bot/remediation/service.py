"""RemediationService: requests with a dry run, and their decisions (approve, deny, expire)
under the request's row lock. Running the approved request is bot.remediation.running; how
each step is written down (audit, timeline, outbox messages) is bot.remediation.recording.

The state machine, every step in one transaction holding the request's row lock:

  requested --(enough distinct approvers)--> approved --> running --> succeeded | failed
  requested --(Deny)--> denied        requested --(expiry reminder, or a late click)--> expired
  running  --(watch reminder: the executor never reported)--> unknown (never re-run)

The click that completes the approvals also moves the request to running, with this process
as its runner, in the same transaction: of twenty clicks or two processes, the first to commit
starts the one execution (after its commit: Tx.after_commit), the others are refused. A watch
reminder, due `remediation.watch_grace` after the execution timeout, closes a run whose
process died as "outcome unknown" and tells its people (RemediationRunner.close_unknown).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot import audit, dedup
from bot.audit import AuditRecord
from bot.clock import Clock
from bot.coordination.owner import owner_id
from bot.errors import Conflict, DuplicateRequest, PermissionDenied
from bot.incidents import storage as incidents
from bot.models import SYSTEM, Actor
from bot.outbox import OutboxDispatcher
from bot.permissions import Permissions
from bot.policy import Policy
from bot.remediation import actions, approval, guards, recording, timers
from bot.remediation import storage as requests
from bot.remediation.listeners import RemediationChanges
from bot.remediation.plans import Executor, NotApplicable, Target, explicit, target_for
from bot.remediation.running import DEFAULT_TIMEOUT, RemediationRunner
from bot.remediation.storage import Request, Status
from bot.reminders import storage as reminders
from bot.store import Store, Tx
from bot.targets.errors import TargetError

DEFAULT_EXPIRY = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Decision:
    """What a click did: `refused` is the reason, shown only to the clicker, when nothing
    changed; `started` when this click started the execution."""

    request: Request
    refused: str | None = None
    started: bool = False


class RemediationService:
    """`/remediate` and its Approve / Deny buttons without Slack."""

    def __init__(
        self,
        *,
        policy: Policy,
        store: Store,
        clock: Clock,
        permissions: Permissions,
        dispatcher: OutboxDispatcher,
        executors: Mapping[str, Executor],
        expiry: timedelta = DEFAULT_EXPIRY,
        timeout: float = DEFAULT_TIMEOUT,
        watch_grace: float = timers.WATCH_GRACE,
        owner: str | None = None,
    ) -> None:
        self.policy = policy
        self.store = store
        self.clock = clock
        self.permissions = permissions
        self.dispatcher = dispatcher
        self.executors = dict(executors)
        self.expiry = expiry
        self.timeout = timeout
        self.owner = owner or owner_id()
        self.changes = RemediationChanges()  # the App Home's refreshes listen here
        self.runner = RemediationRunner(
            changes=self.changes,
            policy=policy,
            store=store,
            clock=clock,
            dispatcher=dispatcher,
            executors=self.executors,
            timeout=timeout,
            watch_grace=watch_grace,
            owner=self.owner,
        )

    # -- requesting -----------------------------------------------------------------------

    def target(self, action: str, service: str) -> Target:
        """The action's spec and the catalog entry of `service`; NotFound for neither."""
        return target_for(self.policy, action, service)

    async def request(
        self,
        action: str,
        service: str,
        actor: Actor,
        *,
        words: Sequence[str] = (),
        params: Mapping[str, Any] | None = None,
        channel_id: str | None = None,
        incident_id: str | None = None,
        request_id: str | None = None,
        origin: str = "command",
    ) -> Request:
        """Validate, check the requester, dry-run against the live target, record the request
        and queue its approval message. Raises UsageError, NotFound, PermissionDenied, or
        Conflict (the action cannot apply now: the dry run says why). The request is the
        incident's named by `incident_id` (a suggestion of its diagnosis) or, failing that,
        the one whose war room `channel_id` is: resolving it closes the request."""
        target = self.target(action, service)
        spec = target.spec
        if incident_id:
            await guards.refuse_untied(self.store, incident_id, target.service, spec.name)
        await guards.refuse_in_drill(self.store, channel_id, incident_id, target.service)
        if params is not None:
            typed = explicit(target, actions.from_button(spec, params))
        else:
            typed = explicit(target, actions.parse_words(spec, words))
        if not await approval.may_request(self.permissions, actor, spec):
            raise PermissionDenied(f"You may not request {spec.name}.")
        # Too few others may approve: it would only wait for its expiry.
        too_few = await approval.too_few_approvers(self.permissions, spec, actor.user_id)
        if too_few:
            raise Conflict(f"Nothing requested: {too_few}")
        try:
            preview = await self.executors[spec.system].preview(target, typed)
        except NotApplicable as exc:
            raise Conflict(f"Nothing requested: {exc}") from None
        except TargetError as exc:
            raise Conflict(f"Nothing requested: the dry run failed ({exc}).") from None
        now = self.clock.now()
        async with self.store.transaction() as tx:
            if request_id and await requests.by_key(tx, request_id):
                raise DuplicateRequest(request_id)
            # The request's claim commits with the change: read back after a failure.
            await dedup.mark_handled(tx, request_id, now)
            # A double click, or two people pressing one suggestion: one request to approve.
            # As this version stores the change, then as older ones did (theirs still wait).
            forms = actions.stored_forms(spec.name, typed.model_dump(mode="json"))
            await requests.lock_change(tx, action=spec.name, service=target.service, forms=forms)
            same = await requests.same_waiting(
                tx, action=spec.name, service=target.service, forms=forms, now=now
            )
            params_json = forms[0]
            if same is not None:
                raise Conflict(
                    f"Nothing requested: request #{same.id} asks for the same change and is"
                    " still waiting for approval; approve or deny that one."
                )
            incident = await guards.incident_of(tx, channel_id, incident_id)
            request = await requests.insert(
                tx,
                action=spec.name,
                service=target.service,
                params=params_json,
                risk=spec.risk.value,
                preview=preview,
                requested_by=actor.user_id,
                now=now,
                expires_at=now + self.expiry,
                approvals_needed=approval.approvals_needed(self.policy.roles, spec),
                incident_id=incident.id if incident else None,
                channel_id=channel_id,
                origin=origin,
                request_key=request_id,
            )
            await reminders.insert(tx, None, timers.PLAN, timers.expiry(request), now)
            args = {
                "action": spec.name,
                "service": target.service,
                "params": request.params,
                "risk": spec.risk.value,
                "origin": origin,
            }
            await recording.record(
                tx,
                self.clock,
                request,
                actor.user_id,
                "remediation.request",
                "requested",
                f"requested #{request.id}: {preview.summary}",
                args,
                request_id,
            )
            await recording.record(
                tx,
                self.clock,
                request,
                actor.user_id,
                "remediation.dry_run",
                "dry_run",
                "",
                {**args, "preview": preview.summary},
                request_id,
            )
            await recording.queue(
                tx,
                self.dispatcher,
                self.changes,
                request,
                now,
                *([recording.POST] if channel_id else []),
            )
        return request

    # -- deciding -------------------------------------------------------------------------

    async def approve(
        self, request_id: int, actor: Actor, *, request_key: str | None = None
    ) -> Decision:
        """Record one approval; the one that completes them starts the execution."""
        # Who may approve is a directory look-up (Slack): resolved before the row is locked.
        approver = await self._may_approve(request_id, actor)
        now = self.clock.now()
        async with self.store.transaction() as tx:
            request = await recording.read(tx, request_id, lock=True)
            # A retried click is refused below as "already approved"; the claim only records
            # that this click's change committed (read back after a failure).
            await dedup.mark_handled(tx, request_key, now)
            spec = actions.spec_for(request.action)
            refused = await self._closed(tx, request, actor, now, "approve")
            if refused is None and actor.user_id == request.requested_by:
                refused = "You requested this: someone else must approve it."
            if refused is None and not approver:
                listed = approval.approvers(self.policy.roles, spec)
                refused = (
                    f"You are not an approver for {spec.name}."
                    if listed
                    else f"Nobody may approve {spec.name}: the policy lists no approvers."
                )
            if refused is None and actor.user_id in request.approvals:
                refused = (
                    f"You already approved #{request.id}; it needs"
                    f" {request.approvals_needed - len(request.approvals)} more."
                )
            if refused is not None:
                await self._refusal(tx, request, actor, "remediation.approve", refused, request_key)
                return Decision(request, refused=refused)
            approvals = [*request.approvals, actor.user_id]
            request = await requests.update(tx, request.id, now, approvals=approvals)
            await recording.record(
                tx,
                self.clock,
                request,
                actor.user_id,
                "remediation.approve",
                "approved",
                f"approved #{request.id} ({len(approvals)} of {request.approvals_needed})",
                {"approvals": approvals},
                request_key,
            )
            started = len(approvals) >= request.approvals_needed
            if started:
                request = await self.runner.start(tx, request, actor, now, request_key)
            await recording.queue(
                tx, self.dispatcher, self.changes, request, now, recording.REFRESH
            )
            if started:
                tx.after_commit(lambda: self.runner.spawn(request_id))
        return Decision(request, started=started)

    async def deny(
        self, request_id: int, actor: Actor, *, request_key: str | None = None
    ) -> Decision:
        """Deny (an approver) or withdraw (the requester) a request still waiting."""
        approver = await self._may_approve(request_id, actor)  # before the row is locked
        now = self.clock.now()
        async with self.store.transaction() as tx:
            request = await recording.read(tx, request_id, lock=True)
            await dedup.mark_handled(tx, request_key, now)  # as in approve
            spec = actions.spec_for(request.action)
            refused = await self._closed(tx, request, actor, now, "deny")
            if refused is None and actor.user_id != request.requested_by and not approver:
                refused = f"Only an approver for {spec.name}, or the requester, may deny it."
            if refused is not None:
                await self._refusal(tx, request, actor, "remediation.deny", refused, request_key)
                return Decision(request, refused=refused)
            request = await requests.update(
                tx,
                request.id,
                now,
                status=Status.DENIED,
                decided_by=actor.user_id,
                decided_at=now,
                outcome="denied",
            )
            await reminders.cancel_subject(tx, request.subject, now, "denied")
            await recording.record(
                tx,
                self.clock,
                request,
                actor.user_id,
                "remediation.deny",
                "denied",
                f"denied #{request.id}",
                {},
                request_key,
            )
            await recording.queue(
                tx, self.dispatcher, self.changes, request, now, recording.REFRESH
            )
        return Decision(request)

    async def _may_approve(self, request_id: int, actor: Actor) -> bool:
        """Whether `actor` is an approver of the request's action (NotFound for no request).
        A request's action never changes, so this holds for the locked read that follows."""
        request = await self.get(request_id)
        return await approval.may_approve(self.permissions, actor, actions.spec_for(request.action))

    async def get(self, request_id: int) -> Request:
        async with self.store.transaction() as tx:
            return await recording.read(tx, request_id)

    async def wait_idle(self) -> None:
        """Wait for the executions this process started (tests, shutdown)."""
        await self.runner.wait_idle()

    async def _closed(
        self, tx: Tx, request: Request, actor: Actor, now: datetime, verb: str
    ) -> str | None:
        """Why a request can no longer be decided (expiring it when its time has passed)."""
        if request.status is Status.REQUESTED and request.expires_at <= now:
            await self.expire(tx, request, now)
            return f"Request #{request.id} expired before it was approved: request it again."
        if request.status is not Status.REQUESTED:
            state = "outcome unknown" if request.status is Status.UNKNOWN else request.status.value
            return f"Request #{request.id} is already {state}: there is nothing to {verb}."
        incident = await incidents.get(tx, request.incident_id) if request.incident_id else None
        if (
            incident is not None
            and not incident.status.is_open
            and (incident.resolved_at is None or incident.resolved_at >= request.requested_at)
        ):
            # What was asked for a live incident is not approved for it resolved: the
            # approver would run a fix for a problem that is over (ask again if it is not).
            await self.expire(tx, request, now, outcome=f"{incident.id} was resolved")
            return (
                f"{incident.id} was resolved after #{request.id} was requested, so it is closed"
                " and nothing was run: request it again if it is still needed."
            )
        return None

    async def expire(
        self,
        tx: Tx,
        request: Request,
        now: datetime,
        *,
        outcome: str = "expired",
        reminder: int | None = None,
    ) -> Request:
        """requested -> expired (the row locked by `tx`); `reminder`: the expiry firing."""
        request = await requests.update(
            tx, request.id, now, status=Status.EXPIRED, decided_at=now, outcome=outcome
        )
        await reminders.cancel_subject(tx, request.subject, now, "expired", firing=reminder)
        await recording.record(
            tx,
            self.clock,
            request,
            SYSTEM.user_id,
            "remediation.expire",
            "expired",
            f"request #{request.id} expired without approval"
            + ("" if outcome == "expired" else f" ({outcome})"),
            {},
            None,
        )
        await recording.queue(tx, self.dispatcher, self.changes, request, now, recording.REFRESH)
        return request

    async def _refusal(
        self, tx: Tx, request: Request, actor: Actor, action: str, reason: str, key: str | None
    ) -> None:
        await audit.append(
            tx,
            self.clock.now(),
            AuditRecord(
                actor=actor.user_id,
                action=action,
                target=request.subject,
                outcome=f"refused: {reason}",
                args={"request": request.id, "status": request.status.value},
                incident_id=request.incident_id,
                request_id=key,
            ),
        )
