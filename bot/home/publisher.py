"""The HomePublisher port: how one person's App Home view reaches Slack.

Contract as the Notifier's (bot.notify): one delivery per call, NotifierError with
`retryable` for transient failures. It takes facts and renders them itself.
"""

from __future__ import annotations

from typing import Protocol

from bot.home.models import HomeFacts


class HomePublisher(Protocol):
    async def publish_home(self, facts: HomeFacts) -> None:
        """Publish one person's App Home view."""
        ...
