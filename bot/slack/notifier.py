"""The Notifier port implemented on Slack's Web API."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.errors import NotifierError
from bot.models import Incident
from bot.notify import MessageRef
from bot.slack import blocks, templates

T = TypeVar("T")

# Slack errors that another attempt may cure; everything else needs a person.
_TRANSIENT = {
    "ratelimited",
    "rate_limited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
}


async def call_slack(request: Awaitable[AsyncSlackResponse]) -> AsyncSlackResponse:
    """Await a Web API call, translating its failures into NotifierError."""
    try:
        return await request
    except SlackApiError as exc:
        code = str(exc.response.get("error", "")) if exc.response is not None else ""
        status = exc.response.status_code if exc.response is not None else 0
        retry_after: float | None = None
        if status == 429:
            header = exc.response.headers.get("Retry-After") or exc.response.headers.get(
                "retry-after"
            )
            retry_after = float(header) if header else 1.0
            code = code or "ratelimited"
        retryable = status == 429 or status >= 500 or code in _TRANSIENT
        raise NotifierError(
            f"Slack error: {code or status}",
            error_code=code,
            retryable=retryable,
            retry_after=retry_after,
        ) from exc
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise NotifierError(f"Slack unreachable: {type(exc).__name__}", retryable=True) from exc


class SlackNotifier:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def post(
        self, channel: str, text: str, blocks_: list[dict[str, Any]] | None = None, **extra: Any
    ) -> MessageRef:
        response = await call_slack(
            self.client.chat_postMessage(channel=channel, text=text, blocks=blocks_, **extra)
        )
        return MessageRef(channel=str(response["channel"]), ts=str(response["ts"]))

    async def announce_incident(self, incident: Incident, *, channel: str) -> MessageRef:
        return await self.post(
            channel, templates.announcement_text(incident), blocks.incident_update(incident)
        )

    async def direct_message(self, user_id: str, text: str) -> MessageRef:
        opened = await call_slack(self.client.conversations_open(users=user_id))
        return await self.post(str(opened["channel"]["id"]), text)

    async def report_failure(
        self, incident: Incident, *, user_id: str, step: str, target: str | None, error: str
    ) -> None:
        await self.direct_message(user_id, templates.step_failed(incident, step, target, error))


class SlackDirectory:
    """The Directory port on Slack: user-group members via usergroups.users.list."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def group_members(self, group_id: str) -> frozenset[str]:
        response = await call_slack(self.client.usergroups_users_list(usergroup=group_id))
        return frozenset(str(user) for user in response.get("users", []))
