"""The RemediationNotifier port on Slack's Web API."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.web.async_client import AsyncWebClient

from bot.notify import MessageRef
from bot.remediation.storage import Request
from bot.slack import remediation_blocks as views
from bot.slack.notifier import call_slack


class SlackRemediationNotifier:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def post_request(
        self, request: Request, *, channel: str, approvers: Sequence[str]
    ) -> MessageRef:
        response = await call_slack(
            self.client.chat_postMessage(
                channel=channel,
                text=views.request_text(request),
                blocks=views.request_blocks(request, approvers),
            )
        )
        return MessageRef(str(response["channel"]), str(response["ts"]))

    async def update_request(
        self, request: Request, ref: MessageRef, *, approvers: Sequence[str]
    ) -> None:
        await call_slack(
            self.client.chat_update(
                channel=ref.channel,
                ts=ref.ts,
                text=views.request_text(request),
                blocks=views.request_blocks(request, approvers),
            )
        )

    async def post_outcome(self, request: Request, ref: MessageRef) -> MessageRef:
        response = await call_slack(
            self.client.chat_postMessage(
                channel=ref.channel, thread_ts=ref.ts, text=views.outcome_text(request)
            )
        )
        return MessageRef(str(response["channel"]), str(response["ts"]))

    async def tell(self, request: Request, *, user_id: str, why: str = "") -> None:
        opened = await call_slack(self.client.conversations_open(users=user_id))
        await call_slack(
            self.client.chat_postMessage(
                channel=str(opened["channel"]["id"]), text=views.tell_text(request, why)
            )
        )
