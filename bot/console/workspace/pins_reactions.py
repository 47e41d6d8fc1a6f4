"""Pins and reactions in the Slack double: pins.add, pins.remove, pins.list, reactions.add."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from bot.console.workspace.api import ApiError, require
from bot.console.workspace.conversations import Conversations
from bot.console.workspace.messages import Messages
from bot.console.workspace.team import Team


class PinsAndReactions:
    """What the bot pins to a channel and the reactions it adds to messages."""

    def __init__(self, team: Team, conversations: Conversations, messages: Messages) -> None:
        self.team = team
        self.conversations = conversations
        self.messages = messages

    def pins_add(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self.conversations.member_channel(params)
        ts = str(require(params, "timestamp"))
        message = self.messages.find_message(channel, ts)
        if ts in channel.pinned:
            raise ApiError("already_pinned")
        channel.pinned.append(ts)
        message["pinned_to"] = [channel.id]
        return {}

    def pins_remove(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self.conversations.member_channel(params)
        ts = str(require(params, "timestamp"))
        message = self.messages.find_message(channel, ts)
        if ts not in channel.pinned:
            raise ApiError("no_pin")
        channel.pinned.remove(ts)
        message.pop("pinned_to", None)
        return {}

    def pins_list(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self.conversations.visible_channel(params)
        items = [
            {
                "type": "message",
                "channel": channel.id,
                "created_by": self.team.bot_user_id,
                "message": copy.deepcopy(self.messages.find_message(channel, ts)),
            }
            for ts in channel.pinned
        ]
        return {"items": items}

    def reactions_add(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self.conversations.visible_channel(params)
        name = str(require(params, "name"))
        if ":" in name or " " in name:
            raise ApiError("invalid_name")  # Slack wants "white_check_mark", not ":...:"
        message = self.messages.find_message(channel, require(params, "timestamp"))
        reactions: list[dict[str, Any]] = message.setdefault("reactions", [])
        for reaction in reactions:
            if reaction["name"] == name:
                if self.team.bot_user_id in reaction["users"]:
                    raise ApiError("already_reacted")
                reaction["users"].append(self.team.bot_user_id)
                reaction["count"] += 1
                return {}
        reactions.append({"name": name, "users": [self.team.bot_user_id], "count": 1})
        return {}
