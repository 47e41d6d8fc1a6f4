"""Delivering the remediation effects from the outbox: the request message, its updates in
place, the outcome in its thread, and direct messages. Handlers re-read the request, so a
retry shows its state as it is now."""

from __future__ import annotations

import logging

from bot import outbox
from bot.errors import NotifierError
from bot.notify import MessageRef
from bot.outbox import Effect, OutboxDispatcher
from bot.remediation import approval
from bot.remediation import recording as kinds
from bot.remediation import storage as requests
from bot.remediation.ports import RemediationNotifier
from bot.remediation.service import RemediationService
from bot.remediation.storage import NOT_POSTED, Request, Status

log = logging.getLogger(__name__)


class RemediationDelivery:
    def __init__(self, *, service: RemediationService, notifier: RemediationNotifier) -> None:
        self.service = service
        self.notifier = notifier

    def register(self, dispatcher: OutboxDispatcher) -> None:
        dispatcher.register(kinds.POST, self._post, on_failure=self._unposted)
        dispatcher.register(kinds.REFRESH, self._refresh, on_failure=self._failed)
        dispatcher.register(kinds.OUTCOME, self._outcome, on_failure=self._failed)
        dispatcher.register(kinds.TELL, self._tell, on_failure=self._failed)

    async def _request(self, effect: Effect) -> Request:
        return await self.service.get(int(effect.payload["request_id"]))

    def _approvers(self, request: Request) -> list[str]:
        """Whom the request message names to ask, as the policy lists them now."""
        return approval.approvers_named(self.service.policy.roles, request.action)

    @staticmethod
    def _message(request: Request) -> MessageRef | None:
        if request.channel_id is None:
            return None
        if request.message_ts is None:
            # Its POST has not been delivered yet: try again after it.
            raise NotifierError("the request message is not posted yet", retryable=True)
        return MessageRef(request.channel_id, request.message_ts)

    async def _post(self, effect: Effect) -> None:
        request = await self._request(effect)
        if request.message_ts is not None or request.channel_id is None:
            return
        ref = await self.notifier.post_request(
            request, channel=request.channel_id, approvers=self._approvers(request)
        )
        async with self.service.store.transaction() as tx:
            await requests.set_message(tx, request.id, ref.channel, ref.ts)
        # Decided while it was being posted: show the state it is in now.
        now = await self._request(effect)
        if now.status != request.status:
            await self.notifier.update_request(now, ref, approvers=self._approvers(now))

    async def _refresh(self, effect: Effect) -> None:
        request = await self._request(effect)
        if request.message_ts is None and request.status is Status.EXPIRED:
            return  # never posted, or its POST (still due) shows it as it is then
        ref = self._message(request)
        if ref is not None:
            await self.notifier.update_request(request, ref, approvers=self._approvers(request))

    async def _outcome(self, effect: Effect) -> None:
        request = await self._request(effect)
        ref = self._message(request)
        if ref is not None:
            await self.notifier.post_outcome(request, ref)
        elif request.status is not Status.UNKNOWN:  # an unknown outcome is told already
            await self._tell_outcome(request)

    async def _tell_outcome(self, request: Request) -> None:
        """No request message to reply under (never posted, or asked where no channel
        was): the requester and the approvers get the outcome privately, each as an effect
        of its own, so a failed DM is retried without sending the others again."""
        now = self.service.clock.now()
        async with self.service.store.transaction() as tx:
            await kinds.queue_tells(tx, request, now)
            tx.after_commit(self.service.dispatcher.kick)

    async def _tell(self, effect: Effect) -> None:
        request = await self._request(effect)
        why = str(effect.payload.get("why", ""))
        await self.notifier.tell(request, user_id=str(effect.payload["user_id"]), why=why)

    async def _unposted(self, effect: Effect, error: NotifierError) -> None:
        """The request message cannot be posted (the bot is not in the channel...): nobody
        there can approve it, and its requester was told it was posted. Close it, tell them."""
        await self._failed(effect, error)
        service = self.service
        now = service.clock.now()
        async with service.store.transaction() as tx:
            request = await kinds.read(tx, int(effect.payload["request_id"]), lock=True)
            if request.message_ts is not None:
                return
            why = error.error_code or str(error)
            if request.status is not Status.REQUESTED:
                # Decided meanwhile (from the App Home): its refresh and outcome, queued
                # behind this post, would wait for a message that never comes, holding the
                # incident's other messages for a day.
                await requests.never_posted(tx, request.id)
                if request.status is Status.EXPIRED:  # it ended where nobody saw it
                    await kinds.queue_tells(tx, request, now, why=why[:80])
                return
            request = await service.expire(tx, request, now, outcome=f"{NOT_POSTED}{why[:80]}")
            await outbox.enqueue(
                tx,
                now,
                kinds.TELL,
                {"request_id": request.id, "user_id": request.requested_by},
                lane=request.incident_id,
            )

    async def _failed(self, effect: Effect, error: NotifierError) -> None:
        log.warning(
            "remediation message %s for request %s failed for good: %s",
            effect.kind,
            effect.payload.get("request_id"),
            error,
        )
