"""Messages in the Slack double: chat.*, threads, ephemerals, conversations.history/replies."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from bot.console.workspace.api import ApiError, as_flag, require
from bot.console.workspace.checks import MESSAGE_TEXT_MAX
from bot.console.workspace.conversations import Channel, Conversations
from bot.console.workspace.directory import Directory
from bot.console.workspace.team import Team
from bot.slack_ids import USER_ID


class Messages:
    """Each channel's messages and replies, and the ephemerals only one person saw.

    A method named after a Web API method (`chat_post_message`) answers it: the success
    body without `ok`, or ApiError.
    """

    def __init__(
        self,
        team: Team,
        directory: Directory,
        conversations: Conversations,
        *,
        chat_write_public: bool,
    ) -> None:
        self.team = team
        self.directory = directory
        self.conversations = conversations
        self.chat_write_public = chat_write_public
        self.ephemerals: list[dict[str, Any]] = []

    def find_message(self, channel: Channel, ts: Any) -> dict[str, Any]:
        """The message at `ts`, or Slack's `message_not_found`."""
        for message in channel.messages:
            if message["ts"] == ts:
                return message
        raise ApiError("message_not_found")

    def post_message(self, channel: Channel, params: Mapping[str, Any]) -> dict[str, Any]:
        """Append a bot message to `channel` (chat.postMessage, response_url in_channel)."""
        text = params.get("text")
        if not any(params.get(key) for key in ("text", "blocks", "attachments", "files")):
            raise ApiError("no_text")
        if isinstance(text, str) and len(text) > MESSAGE_TEXT_MAX:
            raise ApiError("msg_too_long")
        thread_ts = params.get("thread_ts") or None
        parent = None
        if thread_ts is not None:
            try:
                parent = self.find_message(channel, thread_ts)
            except ApiError:
                raise ApiError("invalid_thread_ts") from None
        message: dict[str, Any] = {
            "type": "message",
            "text": text or "",
            "user": self.team.bot_user_id,
            "bot_id": self.team.bot_id,
            "app_id": self.team.app_id,
            "team": self.team.team_id,
            "ts": self.team.new_ts(),
            "bot_profile": {
                "id": self.team.bot_id,
                "app_id": self.team.app_id,
                "name": "chatops-bot",
                "deleted": False,
                "team_id": self.team.team_id,
                "updated": self.team.now(),
                "icons": {
                    f"image_{size}": f"https://a.slack-edge.com/80588/img/plugins/app/bot_{size}.png"
                    for size in (36, 48, 72)
                },
            },
        }
        for key in ("blocks", "attachments", "metadata", "files", "upload"):
            if params.get(key):
                message[key] = copy.deepcopy(params[key])
        if parent is not None:
            message["thread_ts"] = parent["ts"]
            if as_flag(params.get("reply_broadcast")):
                message["subtype"] = "thread_broadcast"
            parent["thread_ts"] = parent["ts"]
            parent["reply_count"] = parent.get("reply_count", 0) + 1
            parent["latest_reply"] = message["ts"]
            parent["reply_users"] = sorted({*parent.get("reply_users", []), self.team.bot_user_id})
            parent["reply_users_count"] = len(parent["reply_users"])
        channel.messages.append(message)
        return message

    def replace_message(self, channel_id: str | None, ts: str, params: Mapping[str, Any]) -> bool:
        """response_url `replace_original`: edit a channel message or an ephemeral one."""
        channel = self.conversations.channels.get(channel_id or "")
        targets = list(channel.messages) if channel else []
        targets += [e for e in self.ephemerals if e.get("channel") == channel_id]
        for message in targets:
            if message.get("ts") == ts or message.get("message_ts") == ts:
                message["text"] = params.get("text") or ""
                message["blocks"] = copy.deepcopy(params.get("blocks") or [])
                return True
        return False

    def delete_message(self, channel_id: str | None, ts: str) -> bool:
        """Remove a message (chat.delete, response_url `delete_original`)."""
        channel = self.conversations.channels.get(channel_id or "")
        if channel is None:
            return False
        before = len(channel.messages)
        channel.messages = [m for m in channel.messages if m["ts"] != ts]
        channel.pinned = [p for p in channel.pinned if p != ts]
        return len(channel.messages) != before

    def add_ephemeral(
        self, channel_id: str | None, user_id: str | None, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Remember a message only `user_id` saw."""
        ephemeral = {
            "channel": channel_id,
            "user": user_id,
            "text": params.get("text") or "",
            "blocks": copy.deepcopy(params.get("blocks") or []),
            "thread_ts": params.get("thread_ts"),
            "message_ts": self.team.new_ts(),
        }
        self.ephemerals.append(ephemeral)
        return ephemeral

    def chat_post_message(self, params: Mapping[str, Any]) -> dict[str, Any]:
        ref = str(require(params, "channel"))
        if USER_ID.fullmatch(ref):
            channel, _ = self.conversations.open_im(ref)  # posting to a user ID lands in the DM
        else:
            channel = self.conversations.visible_channel(params)
        if channel.is_archived:
            raise ApiError("is_archived")
        if self.team.bot_user_id not in channel.members and not self.chat_write_public:
            raise ApiError("not_in_channel")
        message = self.post_message(channel, params)
        return {"channel": channel.id, "ts": message["ts"], "message": copy.deepcopy(message)}

    def chat_update(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self.conversations.visible_channel(params)
        message = self.find_message(channel, require(params, "ts"))
        if message.get("bot_id") != self.team.bot_id:
            raise ApiError("cant_update_message")
        if "text" not in params and "blocks" not in params and "attachments" not in params:
            raise ApiError("no_text")
        text = params.get("text")
        if isinstance(text, str) and len(text) > MESSAGE_TEXT_MAX:
            raise ApiError("msg_too_long")
        for key in ("text", "blocks", "attachments", "metadata"):
            if key in params:
                message[key] = copy.deepcopy(params[key])
        # chat.update does not notify anyone; Slack marks the edit instead.
        message["edited"] = {"user": self.team.bot_user_id, "ts": self.team.new_ts()}
        answer = {k: v for k, v in message.items() if k not in ("ts", "type")}
        return {
            "channel": channel.id,
            "ts": message["ts"],
            "text": message["text"],
            "message": copy.deepcopy(answer),
        }

    def chat_post_ephemeral(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self.conversations.visible_channel(params)
        user_id = str(require(params, "user"))
        if not self.directory.user_exists(user_id):
            raise ApiError("user_not_found")
        if channel.members_known and user_id not in channel.members:
            raise ApiError("user_not_in_channel")
        if not params.get("text") and not params.get("blocks") and not params.get("attachments"):
            raise ApiError("no_text")
        ephemeral = self.add_ephemeral(channel.id, user_id, params)
        return {"message_ts": ephemeral["message_ts"]}

    def chat_delete(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self.conversations.visible_channel(params)
        ts = str(require(params, "ts"))
        if self.find_message(channel, ts).get("bot_id") != self.team.bot_id:
            raise ApiError("cant_delete_message")
        self.delete_message(channel.id, ts)
        return {"channel": channel.id, "ts": ts}

    def chat_get_permalink(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self.conversations.visible_channel(params)
        ts = str(require(params, "message_ts"))
        self.find_message(channel, ts)
        domain = self.team.team_domain
        link = f"https://{domain}.slack.com/archives/{channel.id}/p{ts.replace('.', '')}"
        return {"channel": channel.id, "permalink": link}

    def conversations_history(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self.conversations.visible_channel(params)
        limit = int(params.get("limit") or 100)
        offset = int(params.get("cursor") or 0)
        oldest = float(params.get("oldest") or 0)
        latest = float(params.get("latest") or "inf")
        inclusive = as_flag(params.get("inclusive"))
        top_level = [
            m
            for m in reversed(channel.messages)  # newest first, as Slack answers
            if m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast"
        ]

        def in_range(ts: float) -> bool:
            return oldest <= ts <= latest if inclusive else oldest < ts < latest

        in_range_messages = [m for m in top_level if in_range(float(m["ts"]))]
        page = in_range_messages[offset : offset + limit]
        has_more = offset + limit < len(in_range_messages)
        return {
            "messages": copy.deepcopy(page),
            "has_more": has_more,
            "pin_count": len(channel.pinned),
            "channel_actions_ts": None,
            "channel_actions_count": 0,
            "response_metadata": {"next_cursor": str(offset + limit) if has_more else ""},
        }

    def conversations_replies(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self.conversations.visible_channel(params)
        parent = self.find_message(channel, require(params, "ts"))
        replies = [m for m in channel.messages if m.get("thread_ts") == parent["ts"]]
        if parent not in replies:
            replies.insert(0, parent)
        return {"messages": copy.deepcopy(replies), "has_more": False}
