"""One-line accounts of what the bot did to the workspace (channels, topics, pins...)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bot.console.render.text import NO_NAMES, PLAIN, Names, Style, clean_mrkdwn, emojize

# ----- workspace notices ---------------------------------------------------------------------


MessageLabel = Callable[[str, str], str]
"""(channel_id, ts) -> how to refer to that message, e.g. "msg 3"."""


def _channel_ref(channel: Any, names: Names) -> str:
    if isinstance(channel, Mapping):
        return "#" + str(channel.get("name") or channel.get("id"))
    channel_id = str(channel or "")
    return "#" + (names.channel(channel_id) or channel_id)


def _user_ref(user_id: str, names: Names) -> str:
    return "@" + (names.user(user_id) or user_id)


def render_notice(
    method: str,
    params: Mapping[str, Any],
    response: Mapping[str, Any],
    *,
    names: Names = NO_NAMES,
    message_label: MessageLabel | None = None,
    bot_name: str = "chatops-bot",
    style: Style = PLAIN,
) -> str | None:
    """A one-line account of a workspace change the bot made; None for quiet methods."""
    plain = style.without_color()  # the caller colours the whole line

    def msg(channel: Any, ts: Any) -> str:
        if message_label is None:
            return f"message {ts}"
        return message_label(str(channel), str(ts))

    channel = params.get("channel")
    if method == "conversations.create":
        created = response.get("channel") or {}
        private = " (private)" if created.get("is_private") else ""
        return f"{_channel_ref(created, names)} created{private} by {bot_name}"
    if method == "conversations.setTopic":
        topic = clean_mrkdwn(str(params.get("topic", "")), names, plain)
        return f"{_channel_ref(channel, names)} topic: {topic}"
    if method == "conversations.setPurpose":
        purpose = clean_mrkdwn(str(params.get("purpose", "")), names, plain)
        return f"{_channel_ref(channel, names)} purpose: {purpose}"
    if method == "conversations.invite":
        users = [u.strip() for u in str(params.get("users", "")).split(",") if u.strip()]
        failed = {e.get("user") for e in response.get("errors") or []}
        added = ", ".join(_user_ref(u, names) for u in users if u not in failed)
        return f"{added or 'nobody'} added to {_channel_ref(channel, names)} by {bot_name}"
    if method == "conversations.join":
        return f"{bot_name} joined {_channel_ref(channel, names)}"
    if method in ("conversations.archive", "conversations.unarchive"):
        verb = "archived" if method.endswith(".archive") else "unarchived"
        return f"{_channel_ref(channel, names)} {verb} by {bot_name}"
    if method == "conversations.rename":
        return f"{_channel_ref(channel, names)} renamed to #{params.get('name', '')}"
    if method in ("pins.add", "pins.remove"):
        verb = "pinned" if method == "pins.add" else "unpinned"
        where = _channel_ref(channel, names)
        return f"{bot_name} {verb} {msg(channel, params.get('timestamp'))} in {where}"
    if method == "reactions.add":
        emoji = emojize(f":{params.get('name')}:", plain)
        return (
            f"{bot_name} reacted {emoji} to "
            f"{msg(channel, params.get('timestamp'))} in {_channel_ref(channel, names)}"
        )
    if method == "chat.delete":
        return f"{msg(channel, params.get('ts'))} deleted from {_channel_ref(channel, names)}"
    if method == "views.publish":
        return f"App Home updated for {_user_ref(str(params.get('user_id', '')), names)}"
    if method == "files.completeUploadExternal":
        files = ", ".join(str(f.get("title") or f.get("id")) for f in response.get("files") or [])
        target = params.get("channel_id") or params.get("channels")
        where = f" to {_channel_ref(str(target).split(',')[0], names)}" if target else ""
        return f"{bot_name} uploaded {files or 'a file'}{where}"
    return None
