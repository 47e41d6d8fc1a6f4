"""The ReportPublisher port: how reports, charts and reminders reach people.

Contract as the Notifier's (bot.notify): one delivery per call, NotifierError with
`retryable` for transient failures. Files go up with Slack's two-step flow in the adapter.
Methods take facts and render them themselves, so this package never builds Slack payloads.
"""

from __future__ import annotations

from typing import Protocol

from bot.models import Incident
from bot.reports.models import ActionItem, Stats


class ReportPublisher(Protocol):
    async def upload_report(
        self,
        incident: Incident,
        *,
        channel: str,
        markdown: str,
        requested_by: str,
        refused_in: str | None = None,
    ) -> str:
        """Share the post-incident report in `channel` as a Markdown file; return its ID.
        With `refused_in` (a channel that would not take it), share it with the requester
        by direct message instead, saying why."""
        ...

    async def upload_stats(
        self,
        stats: Stats,
        *,
        channel: str,
        png: bytes,
        requested_by: str,
        refused_in: str | None = None,
    ) -> str:
        """Share the statistics chart (PNG) with its figures in `channel`; return its ID.
        `refused_in` as for `upload_report`."""
        ...

    async def not_shared(
        self, *, incident_id: str | None, channel: str, requested_by: str, error_code: str
    ) -> None:
        """Tell `requested_by` by direct message that the report (`incident_id`) or the
        statistics (None) could not be shared in `channel`, and Slack's `error_code`."""
        ...

    async def remind_action_item(
        self, item: ActionItem, incident: Incident, *, overdue: bool
    ) -> None:
        """Remind the item's owner by direct message, with a button to close it."""
        ...
