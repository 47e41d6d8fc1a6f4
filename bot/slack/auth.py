"""Who the bot is in Slack (auth.test), asked once and shared by every request.

Bolt's own single-team authorization calls auth.test on each request until one answer is
cached: fifty requests at once send fifty calls, and while Slack is down every command is
refused with "Please install this app". Here one call is in flight at a time; its answer is
kept; without one (Slack down at start-up) requests still go on with the bot token, so
commands are acknowledged and answered, and the next request asks again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import NotifierError
from bot.slack.notifier import call_slack

log = logging.getLogger(__name__)

CHECK_TTL = 30.0


class SlackAuth:
    """The bot's identity from auth.test, single-flight and cached."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self.token = str(client.token or "")
        self._identity: dict[str, Any] | None = None
        self._asking: asyncio.Lock | None = None
        self._checked_at: float | None = None

    async def identity(self) -> dict[str, Any]:
        """auth.test's answer; raises NotifierError when Slack does not give one."""
        if self._identity is not None:
            return self._identity
        if self._asking is None:
            self._asking = asyncio.Lock()
        async with self._asking:
            if self._identity is None:
                response = await call_slack(self.client.auth_test())
                self._identity = dict(response.data) if isinstance(response.data, dict) else {}
        return self._identity

    async def check(self) -> None:
        """Whether Slack takes the token (readiness); raises NotifierError. A good answer
        is trusted for `CHECK_TTL` seconds, so probes do not spend auth.test's limit."""
        loop = asyncio.get_running_loop()
        if self._checked_at is not None and loop.time() - self._checked_at < CHECK_TTL:
            return
        response = await call_slack(self.client.auth_test())
        if self._identity is None and isinstance(response.data, dict):
            self._identity = dict(response.data)
        self._checked_at = loop.time()

    async def authorize(
        self, enterprise_id: str | None, team_id: str | None, user_id: str | None
    ) -> AuthorizeResult:
        """Bolt's `authorize` hook (it passes arguments by these names): the identity when
        known, the bare token otherwise."""
        try:
            identity = await self.identity()
        except NotifierError as exc:
            log.warning("auth.test failed, going on with the bot token alone: %s", exc)
            identity = {}
        return AuthorizeResult(
            enterprise_id=enterprise_id or identity.get("enterprise_id"),
            team_id=team_id or identity.get("team_id"),
            bot_token=self.token,
            bot_id=identity.get("bot_id"),
            bot_user_id=identity.get("user_id"),
            user_id=user_id,
        )
