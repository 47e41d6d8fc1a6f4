"""The ReportPublisher port on Slack's Web API: files through the two-step upload
(files.getUploadURLExternal, POST the bytes, files.completeUploadExternal; files.upload is
retired), App Home views through views.publish, reminders by direct message."""

from __future__ import annotations

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import NotifierError
from bot.home.models import HomeFacts
from bot.http_errors import UNREACHABLE
from bot.models import Incident
from bot.reports.models import ActionItem, Stats
from bot.slack import home, report_blocks
from bot.slack.notifier import call_slack


class SlackReportPublisher:
    def __init__(self, client: AsyncWebClient, *, upload_timeout: float = 30.0) -> None:
        self.client = client
        self.upload_timeout = upload_timeout

    async def upload(
        self, *, channel: str, filename: str, title: str, content: bytes, comment: str
    ) -> str:
        """Upload `content` and share it in `channel` with `comment`; return the file ID."""
        ticket = await call_slack(
            self.client.files_getUploadURLExternal(filename=filename, length=len(content))
        )
        url, file_id = str(ticket["upload_url"]), str(ticket["file_id"])
        try:
            timeout = aiohttp.ClientTimeout(total=self.upload_timeout)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.post(url, data=content) as response:
                    if response.status >= 300:
                        raise NotifierError(
                            f"Slack upload failed: HTTP {response.status}",
                            error_code=f"upload_http_{response.status}",
                            retryable=response.status >= 500 or response.status == 429,
                        )
        except UNREACHABLE as exc:
            raise NotifierError(
                f"Slack upload unreachable: {type(exc).__name__}", retryable=True
            ) from exc
        await call_slack(
            self.client.files_completeUploadExternal(
                files=[{"id": file_id, "title": title}], channel_id=channel, initial_comment=comment
            )
        )
        return file_id

    async def upload_report(
        self,
        incident: Incident,
        *,
        channel: str,
        markdown: str,
        requested_by: str,
        refused_in: str | None = None,
    ) -> str:
        comment = report_blocks.report_comment(incident, requested_by)
        return await self.upload(
            channel=await self._where(channel, requested_by, refused_in),
            filename=report_blocks.report_filename(incident),
            title=f"Post-incident report {incident.id}",
            content=markdown.encode(),
            comment=report_blocks.refused_note(refused_in) + comment if refused_in else comment,
        )

    async def upload_stats(
        self,
        stats: Stats,
        *,
        channel: str,
        png: bytes,
        requested_by: str,
        refused_in: str | None = None,
    ) -> str:
        # One call that can be retried whole: the figures travel as the file's comment.
        comment = report_blocks.stats_comment(stats, requested_by)
        return await self.upload(
            channel=await self._where(channel, requested_by, refused_in),
            filename=report_blocks.stats_filename(stats),
            title=report_blocks.stats_text(stats),
            content=png,
            comment=report_blocks.refused_note(refused_in) + comment if refused_in else comment,
        )

    async def _where(self, channel: str, requested_by: str, refused_in: str | None) -> str:
        """`channel`, or the requester's direct message with the bot when one refused."""
        if refused_in is None:
            return channel
        opened = await call_slack(self.client.conversations_open(users=requested_by))
        return str(opened["channel"]["id"])

    async def publish_home(self, facts: HomeFacts) -> None:
        await call_slack(
            self.client.views_publish(user_id=facts.user_id, view=home.home_view(facts))
        )

    async def not_shared(
        self, *, incident_id: str | None, channel: str, requested_by: str, error_code: str
    ) -> None:
        opened = await call_slack(self.client.conversations_open(users=requested_by))
        await call_slack(
            self.client.chat_postMessage(
                channel=str(opened["channel"]["id"]),
                text=report_blocks.not_shared_text(incident_id, channel, error_code),
            )
        )

    async def remind_action_item(
        self, item: ActionItem, incident: Incident, *, overdue: bool
    ) -> None:
        opened = await call_slack(self.client.conversations_open(users=item.owner))
        await call_slack(
            self.client.chat_postMessage(
                channel=str(opened["channel"]["id"]),
                text=report_blocks.reminder_text(item, incident, overdue=overdue),
                blocks=report_blocks.reminder_blocks(item, incident, overdue=overdue),
            )
        )
