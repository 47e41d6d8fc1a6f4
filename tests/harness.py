"""The whole bot, running for real, against the Slack double: what e2e tests drive.

The app serves HTTP on a free loopback port; requests are signed exactly as Slack signs them;
the bot's Web API calls land on the double, which validates and records them.
"""

from __future__ import annotations

import json
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.clock import Clock
from bot.console.workspace import SlackDouble
from bot.console.workspace.checks import check_markup, check_message
from bot.policy import Policy, load_policy
from bot.runtime import Bot, create_bot
from bot.settings import Settings
from bot.slack.limits import SlackLimits
from bot.slack.requests import (
    AppResponse,
    SlackRequestBody,
    SlackRequestSender,
    block_actions_body,
    event_callback_body,
    slash_command_body,
    view_submission_body,
)

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-test"
# Slack's clock, this many times faster: the double enforces Slack's limits at this pace and
# the bot keeps it, so every e2e test checks the bot never draws a 429, without waiting a
# second per message.
PACE_SCALE = 20.0
SCHEMAS = Path(__file__).resolve().parent / "slack_schemas"

_openapi_cache: dict[str, Any] = {}


def openapi_spec() -> dict[str, Any]:
    """Slack's Web API OpenAPI spec, vendored in tests/slack_schemas (fails loudly if missing)."""
    if not _openapi_cache:
        path = SCHEMAS / "slack_web_openapi_v2.json"
        assert path.exists(), f"Slack's OpenAPI spec is missing at {path}"
        _openapi_cache.update(json.loads(path.read_text()))
    return _openapi_cache


_default_policy: list[Policy] = []


def default_policy() -> Policy:
    """The built-in policy, parsed once per process (its YAML costs 4-14 ms a start). Each
    call gets a deep copy: the model is frozen but holds lists and dicts, and no test may see
    another's changes."""
    if not _default_policy:
        _default_policy.append(load_policy(None))
    return _default_policy[0].model_copy(deep=True)


# Per double, not per harness: a count per harness let the second bot's first wait return the
# first bot's earlier answer at once, so its command's work was not yet done.
_responses_taken: weakref.WeakKeyDictionary[SlackDouble, int] = weakref.WeakKeyDictionary()


@dataclass
class BotHarness:
    double: SlackDouble
    bot: Bot
    sender: SlackRequestSender
    app_url: str

    @property
    def services(self):  # type: ignore[no-untyped-def]
        return self.bot.services

    @property
    def store(self):  # type: ignore[no-untyped-def]
        return self.bot.services.store

    async def command(
        self,
        text: str,
        *,
        command: str = "/incident",
        user_id: str = "U0ALICE",
        channel_id: str = "C0GENERAL",
        retry_num: int | None = None,
        trigger_id: str | None = None,
        body: SlackRequestBody | None = None,
    ) -> AppResponse:
        """Send a signed slash command, as Slack would, and return the app's HTTP answer."""
        body = body or self.slash(
            text, command=command, user_id=user_id, channel_id=channel_id, trigger_id=trigger_id
        )
        return self._checked_ack(await self.sender.send(body, retry_num=retry_num))

    def _checked_ack(self, response: AppResponse) -> AppResponse:
        """An ack that carries a message is shown by Slack like any other: the double never
        sees it, so its checks run here and land among the double's violations."""
        if isinstance(response.body, dict):
            problems = check_message(response.body) + check_markup(response.body)
            self.double.violations.extend(f"ack: {p}" for p in problems)
        return response

    def slash(
        self,
        text: str,
        *,
        command: str = "/incident",
        user_id: str = "U0ALICE",
        channel_id: str = "C0GENERAL",
        trigger_id: str | None = None,
    ) -> SlackRequestBody:
        response_url = self.double.new_response_url(channel=channel_id, user_id=user_id)
        return slash_command_body(
            command=command,
            text=text,
            user_id=user_id,
            channel_id=channel_id,
            response_url=response_url,
            trigger_id=trigger_id,
        )

    async def click(self, action_id: str, **kwargs: Any) -> AppResponse:
        """Press a button (block_actions), signed like Slack."""
        kwargs.setdefault(
            "response_url",
            self.double.new_response_url(
                channel=kwargs.get("channel_id"),
                message_ts=kwargs.get("message_ts"),
                user_id=kwargs.get("user_id"),
            ),
        )
        return self._checked_ack(await self.sender.send(block_actions_body(action_id, **kwargs)))

    async def submit_view(
        self, callback_id: str, values: dict[str, Any], **kwargs: Any
    ) -> AppResponse:
        return await self.sender.send(view_submission_body(callback_id, values, **kwargs))

    async def event(self, event: dict[str, Any], **kwargs: Any) -> AppResponse:
        return await self.sender.send(event_callback_body(event, **kwargs))

    @property
    def responses_seen(self) -> int:
        """Answers taken so far by every harness on this double: two bots sharing one
        double (two processes) take its answers in turn, so each waits for its own."""
        return _responses_taken.get(self.double, 0)

    @responses_seen.setter
    def responses_seen(self, value: int) -> None:
        _responses_taken[self.double] = value

    async def replies(self, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The next `count` response_url posts (ephemeral answers) since the last call."""
        wanted = self.responses_seen + count
        responses = await self.double.wait_for_response(wanted, timeout=timeout)
        new = [r.payload for r in responses[self.responses_seen : wanted]]
        self.responses_seen = wanted
        return new

    async def settle(self) -> None:
        """Deliver everything the outbox holds (announcements, updates...)."""
        await self.bot.services.dispatcher.drain()

    async def stop(self) -> None:
        await self.sender.close()
        await self.bot.stop()
        await self.double.stop()


async def start_harness(
    database_url: str,
    *,
    policy: Policy | None = None,
    clock: Clock | None = None,
    redis_url: str | None = None,
    double: SlackDouble | None = None,
    app_token: str | None = None,
    pace_scale: float = PACE_SCALE,
    **overrides: Any,
) -> BotHarness:
    """Start the bot; `overrides` set Settings fields (DATABASE_POOL_SIZE=1, ...)."""
    double = double or SlackDouble(
        bot_token=BOT_TOKEN,
        openapi_spec=openapi_spec(),
        rate_limits=SlackLimits(scale=pace_scale),
    )
    if not double.running:
        await double.start()
    settings = Settings(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=double.api_url,
        SLACK_APP_TOKEN=app_token,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SLACK_PACE_SCALE=pace_scale,
        **overrides,
    )
    bot = create_bot(settings, policy=policy or default_policy(), clock=clock)
    await bot.start("127.0.0.1", 0)
    app_url = f"http://127.0.0.1:{bot.port}/slack/events"
    return BotHarness(
        double=double, bot=bot, sender=SlackRequestSender(app_url, SIGNING_SECRET), app_url=app_url
    )
