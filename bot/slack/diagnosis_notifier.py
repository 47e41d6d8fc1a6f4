"""The DiagnosisNotifier port on Slack's Web API."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bot.diagnostics.findings import Report
from bot.notify import MessageRef
from bot.slack import diagnosis_blocks as views
from bot.slack.notifier import call_slack


class SlackDiagnosisNotifier:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def post_summary(
        self, report: Report, *, channel: str, actor: str, incident_id: str | None = None
    ) -> MessageRef:
        response = await call_slack(
            self.client.chat_postMessage(
                channel=channel,
                text=views.summary_text(report),
                blocks=views.summary_blocks(report, actor=actor, incident_id=incident_id),
            )
        )
        return MessageRef(str(response["channel"]), str(response["ts"]))

    async def post_evidence(self, report: Report, ref: MessageRef) -> None:
        for text, blocks in views.evidence_messages(report):
            await call_slack(
                self.client.chat_postMessage(
                    channel=ref.channel, thread_ts=ref.ts, text=text, blocks=blocks
                )
            )

    async def tell_failed(
        self, report: Report, *, user_id: str, error: str, incident_id: str | None = None
    ) -> None:
        opened = await call_slack(self.client.conversations_open(users=user_id))
        await call_slack(
            self.client.chat_postMessage(
                channel=str(opened["channel"]["id"]),
                text=views.post_failed(error),
                blocks=views.summary_blocks(report, actor=user_id, incident_id=incident_id),
            )
        )
