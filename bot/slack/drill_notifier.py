"""The DrillNotifier port on Slack's Web API."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bot.incidents.drill_report import DrillReport
from bot.models import Incident
from bot.notify import MessageRef
from bot.slack import drill_text
from bot.slack.notifier import call_slack


class SlackDrillNotifier:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def post_drill_report(
        self, incident: Incident, report: DrillReport, *, channel: str
    ) -> MessageRef:
        response = await call_slack(
            self.client.chat_postMessage(
                channel=channel,
                text=drill_text.report_title(report),
                blocks=drill_text.report_blocks(incident, report),
            )
        )
        return MessageRef(str(response["channel"]), str(response["ts"]))
