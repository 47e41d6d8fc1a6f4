"""Who the bot is in Slack (auth.test), asked once and shared by every request.

Bolt's own single-team authorization calls auth.test on each request until one answer is
cached: fifty requests at once send fifty calls, and while Slack is down every command is
refused with "Please install this app". Here one call is in flight at a time, shared by
every request that waits for it; its answer is kept. Without one (Slack down or slow at
start-up) requests go on with the bot token after at most AUTHORIZE_WAIT, so commands are
acknowledged and answered; a failed call is not made again for RETRY_SECONDS. (Each request
once waited its turn to ask again: with Slack's Web API unreachable, a burst of commands was
acknowledged one a second, most of them too late for Slack.)
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
# How long a request waits for auth.test before going on with the bot token alone: its ack
# waits with it (Slack gives 3 s; /oncall answers in its ack after up to 1.5 s of look-ups).
AUTHORIZE_WAIT = 0.5
# After auth.test failed, how long requests go on without asking again.
RETRY_SECONDS = 10.0


class SlackAuth:
    """The bot's identity from auth.test, single-flight and cached."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self.token = str(client.token or "")
        self._identity: dict[str, Any] | None = None
        self._asking: asyncio.Future[dict[str, Any]] | None = None
        self._failed: tuple[float, str] | None = None  # when, and why
        self._checked_at: float | None = None

    async def identity(self) -> dict[str, Any]:
        """auth.test's answer; raises NotifierError when Slack does not give one (at once,
        for RETRY_SECONDS after a call failed)."""
        if self._identity is not None:
            return self._identity
        loop = asyncio.get_running_loop()
        if self._failed is not None and loop.time() - self._failed[0] < RETRY_SECONDS:
            raise NotifierError(self._failed[1])
        if self._asking is None:
            self._asking = asyncio.ensure_future(self._ask())
            # Retrieved even when every waiter gave up on it (asyncio logs it otherwise).
            self._asking.add_done_callback(lambda f: f.cancelled() or f.exception())
        # Shielded: a waiter that gives up (AUTHORIZE_WAIT) leaves the call to the others.
        return await asyncio.shield(self._asking)

    async def identity_soon(self) -> dict[str, Any]:
        """The identity, or {} when auth.test fails or takes longer than AUTHORIZE_WAIT: for
        what runs before an ack."""
        try:
            return await asyncio.wait_for(self.identity(), AUTHORIZE_WAIT)
        except (NotifierError, TimeoutError):
            return {}  # said once per failed call (_ask)

    async def _ask(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        try:
            response = await call_slack(self.client.auth_test())
        except NotifierError as exc:
            self._failed = (loop.time(), str(exc))
            log.warning("auth.test failed, going on with the bot token alone: %s", exc)
            raise
        finally:
            self._asking = None
        self._failed = None
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
        identity = await self.identity_soon()
        return AuthorizeResult(
            enterprise_id=enterprise_id or identity.get("enterprise_id"),
            team_id=team_id or identity.get("team_id"),
            bot_token=self.token,
            bot_id=identity.get("bot_id"),
            bot_user_id=identity.get("user_id"),
            user_id=user_id,
        )
