"""conversations.list for the Slack double, paged the way Slack pages it.

https://api.slack.com/methods/conversations.list: `types` (comma-separated, default
`public_channel`), `exclude_archived`, `limit` (default 100, at most 1000) and an opaque
`cursor`; the answer carries `response_metadata.next_cursor`, empty on the last page.
Private channels, IMs and MPIMs are listed only when the bot is in them.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from bot.console.workspace.api import ApiError, as_flag
from bot.console.workspace.conversations import Channel, Conversations

TYPES = frozenset({"public_channel", "private_channel", "mpim", "im"})
LIMIT_DEFAULT = 100
LIMIT_MAX = 1000


def _kind(channel: Channel) -> str:
    if channel.is_im:
        return "im"
    if channel.is_mpim:
        return "mpim"
    return "private_channel" if channel.is_private else "public_channel"


def _cursor(channel_id: str) -> str:
    return base64.b64encode(f"next:{channel_id}".encode()).decode()


def _position(cursor: str, ids: list[str]) -> int:
    try:
        decoded = base64.b64decode(cursor.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ApiError("invalid_cursor") from None
    channel_id = decoded.removeprefix("next:")
    if not decoded.startswith("next:") or channel_id not in ids:
        raise ApiError("invalid_cursor")
    return ids.index(channel_id)


def conversations_list(conversations: Conversations, params: Mapping[str, Any]) -> dict[str, Any]:
    """One page of the conversations the bot can see, oldest first."""
    wanted = {t.strip() for t in str(params.get("types") or "public_channel").split(",")}
    if not wanted or not wanted <= TYPES:
        raise ApiError("invalid_types")
    try:
        limit = int(params.get("limit") or LIMIT_DEFAULT)
    except (TypeError, ValueError):
        raise ApiError("invalid_limit") from None
    if not 1 <= limit <= LIMIT_MAX:
        raise ApiError("invalid_limit")
    skip_archived = as_flag(params.get("exclude_archived"))
    visible = [
        channel
        for channel in conversations.channels.values()
        if _kind(channel) in wanted
        and not (skip_archived and channel.is_archived)
        and (
            _kind(channel) == "public_channel" or conversations.team.bot_user_id in channel.members
        )
    ]
    ids = [channel.id for channel in visible]
    start = _position(str(params["cursor"]), ids) if params.get("cursor") else 0
    page = visible[start : start + limit]
    more = start + limit < len(visible)
    return {
        "channels": [conversations.channel_object(channel) for channel in page],
        "response_metadata": {"next_cursor": _cursor(ids[start + limit]) if more else ""},
    }
