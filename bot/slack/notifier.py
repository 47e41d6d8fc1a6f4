"""The Notifier port implemented on Slack's Web API."""

from __future__ import annotations

import os
import traceback
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.errors import NotifierError
from bot.http_errors import UNREACHABLE, retry_after_seconds, retry_of
from bot.models import Incident
from bot.notify import ChannelFacts, ChatMessage, EscalationShown, MessageRef, Page
from bot.refs import Rich
from bot.slack import blocks, error_text, escalation_text, rich, templates
from bot.slack.escape import from_slack
from bot.text import visible

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
# conversations.invite errors about one person: the others can still be invited.
_PER_USER_INVITE_ERRORS = {
    "user_not_found",
    "user_is_restricted",
    "user_is_ultra_restricted",
    "cant_invite",
    "ura_max_channels",
    "user_is_bot",
    "user_disabled",
}
# Invites that need nothing done: the person is there already.
_INVITE_NO_OPS = {"already_in_channel", "cant_invite_self"}
_MESSAGE_GONE = {"message_not_found", "thread_not_found"}
# A remembered DM channel that no longer takes posts: open it again (Slack says why if not).
_DM_GONE = {"channel_not_found", "is_archived", "not_in_channel"}
# DM channels remembered per process; the oldest forgotten past this many people.
_DM_CHANNELS_KEPT = 10_000


async def call_slack(request: Awaitable[AsyncSlackResponse]) -> AsyncSlackResponse:
    """Await a Web API call, translating its failures into NotifierError.

    Transient (`retryable`): HTTP 429 (with Slack's Retry-After as `retry_after`), any 5xx,
    an answer that is not a JSON object (a proxy's text or HTML page), the transient error
    codes, connection errors and timeouts. Everything else is a person's to fix.
    """
    try:
        return await request
    except SlackApiError as exc:
        raise _translate(exc.response) from exc
    except UNREACHABLE as exc:
        raise NotifierError(f"Slack unreachable: {type(exc).__name__}", retryable=True) from exc
    except AttributeError as exc:
        # slack_sdk's own check reads `.get` on the body: an HTTP 200 whose body is text.
        # Any other AttributeError is a bug of ours: it is raised as it is, never retried
        # for a day as Slack's fault.
        if not _raised_by_response_check(exc):
            raise
        raise NotifierError("Slack answered with a body that is not JSON", retryable=True) from exc


def _raised_by_response_check(exc: AttributeError) -> bool:
    """True when `exc` came from slack_sdk's AsyncSlackResponse.validate reading a text body."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return False
    last = frames[-1]
    return last.name == "validate" and last.filename.endswith(
        os.path.join("slack_sdk", "web", "async_slack_response.py")
    )


def _translate(response: Any) -> NotifierError:
    """The NotifierError for an answer slack_sdk refused.

    `response` is an AsyncSlackResponse (its `data` a dict, or a str for a text body), or the
    raw aiohttp response when the body claimed to be JSON and was not.
    """
    status = _status_of(response)
    data = getattr(response, "data", None)
    headers = getattr(response, "headers", None) or {}
    readable = isinstance(data, dict) and bool(data)
    code = str(data.get("error") or "") if isinstance(data, dict) else ""
    header = headers.get("Retry-After") or headers.get("retry-after")
    retryable, retry_after = retry_of(status, readable=readable, retry_after=header)
    if status == 429:
        code = code or "ratelimited"
    elif code in _TRANSIENT:  # Slack's own word that it may pass, whatever the status
        retryable, retry_after = True, retry_after_seconds(header)
    if readable or status == 429:
        message = f"Slack error: {code or status}"
    else:
        message = f"Slack answered HTTP {status} with a body that is not JSON"
    return NotifierError(message, error_code=code, retryable=retryable, retry_after=retry_after)


def _status_of(response: Any) -> int:
    for attribute in ("status_code", "status"):  # AsyncSlackResponse, aiohttp.ClientResponse
        value = getattr(response, attribute, None)
        if isinstance(value, int):
            return value
    return 0


class SlackNotifier:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._own_user_id: str | None = None  # the bot's user ID, from auth.test once
        # user ID -> the bot's DM channel with them: a person's DM channel never changes, so
        # a page or reminder to someone already written to is one call, not two.
        self._dm_channels: dict[str, str] = {}

    async def post(
        self, channel: str, text: str, blocks_: list[dict[str, Any]] | None = None, **extra: Any
    ) -> MessageRef:
        # The same JSON chat_postMessage sends, without its walk of the blocks looking for
        # slack_sdk's Block objects (ours are dicts): a tenth of slack_sdk's CPU per post.
        payload = {"channel": channel, "text": text, "blocks": blocks_, **extra}
        message = {key: value for key, value in payload.items() if value is not None}
        response = await call_slack(self.client.api_call("chat.postMessage", json=message))
        return MessageRef(channel=str(response["channel"]), ts=str(response["ts"]))

    async def post_to_user(
        self, user_id: str, text: str, blocks_: list[dict[str, Any]] | None = None
    ) -> MessageRef:
        """Post in the bot's DM with `user_id`, opened (conversations.open) the first time."""
        known = self._dm_channels.get(user_id)
        if known is not None:
            try:
                return await self.post(known, text, blocks_)
            except NotifierError as exc:
                if exc.error_code not in _DM_GONE:
                    raise
                self._dm_channels.pop(user_id, None)
        opened = await call_slack(self.client.conversations_open(users=user_id))
        channel = str(opened["channel"]["id"])
        if len(self._dm_channels) >= _DM_CHANNELS_KEPT:
            self._dm_channels.pop(next(iter(self._dm_channels)))
        self._dm_channels[user_id] = channel
        return await self.post(channel, text, blocks_)

    async def announce_incident(
        self, incident: Incident, *, channel: str, escalation: EscalationShown | None = None
    ) -> MessageRef:
        # The announcement is the incident's card: refreshed in place after every change.
        text = templates.announcement_text(incident)
        if page := escalation_text.announced_page_text(incident):
            text = f"{text}\n{page}"  # the notification names the people paged
        return await self.post(channel, text, blocks.incident_card(incident, escalation=escalation))

    async def direct_message(self, user_id: str, text: str) -> MessageRef:
        return await self.post_to_user(user_id, text)

    async def report_failure(
        self, incident: Incident, *, user_id: str, step: str, target: str | None, error: str
    ) -> None:
        await self.direct_message(user_id, error_text.step_failed(incident, step, target, error))

    # -- war rooms and incident messages ---------------------------------------------------

    async def report_failure_in_channel(
        self, incident: Incident, *, channel: str, step: str, target: str | None, error: str
    ) -> None:
        await self.post(channel, error_text.step_failed(incident, step, target, error))

    async def create_channel(self, name: str) -> str:
        response = await call_slack(self.client.conversations_create(name=name, is_private=False))
        return str(response["channel"]["id"])

    async def find_channel(self, name: str) -> ChannelFacts | None:
        # Slack has no lookup by name: page through the public channels, 1000 at a time.
        cursor = ""
        while True:
            response = await call_slack(
                self.client.conversations_list(
                    types="public_channel", exclude_archived=True, limit=1000, cursor=cursor
                )
            )
            for channel in response.get("channels") or []:
                if channel.get("name") == name:
                    return await self._facts(channel)
            cursor = str((response.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return None

    async def _facts(self, channel: dict[str, Any]) -> ChannelFacts:
        if self._own_user_id is None:
            identity = await call_slack(self.client.auth_test())
            self._own_user_id = str(identity.get("user_id") or "")
        creator = str(channel.get("creator") or "")
        return ChannelFacts(
            id=str(channel["id"]),
            name=str(channel.get("name") or ""),
            creator=creator,
            created=datetime.fromtimestamp(int(channel.get("created") or 0), UTC),
            created_by_bot=bool(creator) and creator == self._own_user_id,
        )

    async def invite(self, channel: str, user_ids: Sequence[str]) -> dict[str, str]:
        # One call per person: Slack fails a whole batch for one unknown user, and a
        # repeated invite ("already_in_channel") is harmless, so retries are safe.
        failures: dict[str, str] = {}
        for user_id in dict.fromkeys(user_ids):
            try:
                await call_slack(self.client.conversations_invite(channel=channel, users=user_id))
            except NotifierError as exc:
                if exc.error_code in _INVITE_NO_OPS:
                    continue
                if exc.error_code in _PER_USER_INVITE_ERRORS:
                    failures[user_id] = exc.error_code
                    continue
                raise
        return failures

    async def set_topic(self, incident: Incident, *, channel: str) -> None:
        await call_slack(
            self.client.conversations_setTopic(
                channel=channel, topic=templates.war_room_topic(incident)
            )
        )

    async def post_summary(
        self, incident: Incident, *, channel: str, escalation: EscalationShown | None = None
    ) -> MessageRef:
        card = blocks.incident_card(incident, escalation=escalation)
        return await self.post(channel, templates.card_text(incident), card)

    async def update_card(
        self, incident: Incident, ref: MessageRef, *, escalation: EscalationShown | None = None
    ) -> None:
        await call_slack(
            self.client.chat_update(
                channel=ref.channel,
                ts=ref.ts,
                text=templates.card_text(incident),
                blocks=blocks.incident_card(incident, escalation=escalation),
            )
        )

    async def pin(self, ref: MessageRef) -> None:
        try:
            await call_slack(self.client.pins_add(channel=ref.channel, timestamp=ref.ts))
        except NotifierError as exc:
            if exc.error_code != "already_pinned":
                raise

    async def post_update(self, incident: Incident, *, channel: str, kind: str) -> MessageRef:
        headline = templates.UPDATE_HEADLINES.get(kind, "Incident Update")
        return await self.post(
            channel,
            templates.update_text(incident, kind),
            blocks.incident_update(incident, headline=headline),
        )

    async def post_notice(
        self,
        incident: Incident,
        *,
        channel: str,
        kind: str,
        text: Rich,
        actor: str,
        thread_ts: str | None = None,
        said: str = "",
    ) -> MessageRef:
        extra: dict[str, Any] = {"thread_ts": thread_ts} if thread_ts else {}
        return await self.post(
            channel, templates.notice(kind, rich.mrkdwn(text, said), actor), **extra
        )

    async def fetch_message(self, channel: str, ts: str) -> ChatMessage | None:
        # conversations.history holds top-level messages; a reply in a thread is only
        # found through conversations.replies.
        try:
            history = await call_slack(
                self.client.conversations_history(
                    channel=channel, latest=ts, oldest=ts, inclusive=True, limit=1
                )
            )
            found = _message_at(history.get("messages") or [], ts)
            if found is None:
                replies = await call_slack(
                    self.client.conversations_replies(channel=channel, ts=ts)
                )
                found = _message_at(replies.get("messages") or [], ts)
        except NotifierError as exc:
            if exc.error_code in _MESSAGE_GONE:
                return None
            raise
        if found is None:
            return None
        return ChatMessage(
            channel=channel,
            ts=ts,
            # Plain text, as the reader saw it: the mentions in it must not ping again.
            text=visible(from_slack(str(found.get("text") or ""))) or _files_of(found),
            user=found.get("user") if not found.get("bot_id") else None,
        )

    async def page(self, incident: Incident, page: Page, *, channel: str) -> MessageRef:
        text = escalation_text.page_text(incident, page)
        return await self.post(channel, text, blocks.page_message(incident, text))

    async def page_user(
        self, incident: Incident, page: Page, *, user_id: str, channel: str
    ) -> MessageRef:
        text = escalation_text.page_dm_text(incident, page, channel)
        return await self.post_to_user(user_id, text, blocks.page_message(incident, text))

    async def warn_breach(
        self,
        incident: Incident,
        *,
        channel: str,
        target: str,
        within: str,
        due_at: datetime,
        mention: str | None,
    ) -> MessageRef:
        text = escalation_text.breach_text(
            incident, target=target, within=within, due_at=due_at, mention=mention
        )
        return await self.post(channel, text)

    async def remind(
        self, incident: Incident, *, user_id: str, kind: str, due_at: datetime, within: str
    ) -> MessageRef:
        text = escalation_text.reminder_text(incident, kind=kind, due_at=due_at, within=within)
        return await self.direct_message(user_id, text)

    async def remind_in_channel(
        self,
        incident: Incident,
        *,
        channel: str,
        mentions: Sequence[str],
        kind: str,
        due_at: datetime,
        within: str,
    ) -> MessageRef:
        text = escalation_text.channel_reminder_text(
            incident, recipients=mentions, kind=kind, due_at=due_at, within=within
        )
        return await self.post(channel, text)


def _message_at(messages: list[dict[str, Any]], ts: str) -> dict[str, Any] | None:
    return next((m for m in messages if m.get("ts") == ts), None)


class SlackDirectory:
    """The Directory port on Slack: user-group members via usergroups.users.list."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def group_members(self, group_id: str) -> frozenset[str]:
        response = await call_slack(self.client.usergroups_users_list(usergroup=group_id))
        users: list[Any] = response.get("users") or []
        return frozenset(str(user) for user in users)

    async def user_by_email(self, email: str) -> str | None:
        """The Slack user with this e-mail (users.lookupByEmail); None when nobody has it."""
        try:
            response = await call_slack(self.client.users_lookupByEmail(email=email))
        except NotifierError as exc:
            if exc.error_code == "users_not_found":
                return None
            raise
        return str((response.get("user") or {}).get("id") or "") or None


def _files_of(message: dict[str, Any]) -> str:
    """A message with no text (a screenshot, a log file shared in the war room) as its
    files' names: pinned, it was an empty line on the timeline and in the report."""
    files = [f for f in message.get("files") or [] if isinstance(f, dict)]
    names = [str(f.get("title") or f.get("name") or "untitled") for f in files]
    if not names:
        return ""
    return visible("Shared " + ("a file: " if len(names) == 1 else "files: ") + ", ".join(names))
