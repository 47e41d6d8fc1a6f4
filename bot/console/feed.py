"""What the pretend workspace did, as the person at the console reads it.

Every Web API call the bot makes lands in the Slack double, which tells the feed; the feed
prints what is new or edited since the reader last looked (an edit shows only what changed),
numbers messages (`msg 3`) and their buttons (`[1] Acknowledge`), and keeps the numbers
stable: an edited message keeps the numbers of the buttons it kept.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from bot.console.render import (
    Names,
    Numbering,
    Style,
    changed_lines,
    headline,
    indent,
    render_message,
    render_notice,
)
from bot.console.terminal import TerminalText
from bot.console.workspace import Channel, RecordedCall, RecordedResponse, SlackDouble

log = logging.getLogger(__name__)

BOT_NAME = "chatops-bot"
# Failures the bot expects and handles itself: a method whose every failure is its own
# business, and answers that mean the work was already done (a war room's set-up run again).
_QUIET_FAILURES = {"conversations.join"}
_ALREADY_DONE = {
    ("conversations.invite", "already_in_channel"),
    ("conversations.invite", "cant_invite_self"),
    ("pins.add", "already_pinned"),
}


class WorkspaceNames:
    """Display names from the double's state (seeded users and known channels)."""

    def __init__(self, double: SlackDouble) -> None:
        self.state = double.state

    def user(self, user_id: str) -> str | None:
        if user_id == self.state.bot_user_id:
            return BOT_NAME
        seed = self.state.users.get(user_id)
        return str(seed.get("name") or seed.get("real_name") or "") or None if seed else None

    def channel(self, channel_id: str) -> str | None:
        channel = self.state.channels.get(channel_id)
        return channel.name if channel is not None and not channel.is_im else None

    def usergroup(self, group_id: str) -> str | None:
        return None


@dataclass(frozen=True)
class ControlRef:
    """Where a numbered control lives, so a press can find the message as it is now."""

    channel_id: str | None
    ts: str
    ephemeral: bool
    block_id: str | None
    action_id: str


def can_see(channel: Channel, user_id: str) -> bool:
    """Whether Slack shows `channel` to `user_id`: a DM only to its two parties, a private
    channel or group DM only to its members (when the double knows them)."""
    if channel.is_im:
        return channel.user == user_id
    if channel.is_mpim or channel.is_private:
        return not channel.members_known or user_id in channel.members
    return True


def fingerprint(message: Mapping[str, Any]) -> str:
    # Reactions, pins and reply counts change a message without editing it.
    visible = [message.get(k) for k in ("text", "blocks", "attachments", "files")]
    return json.dumps(visible, sort_keys=True, default=str)


class Screen:
    """Where the console prints: plain lines to a pipe, wrapped lines on a terminal."""

    def __init__(self, out: TextIO, style: Style, *, terminal: bool) -> None:
        self.out = out
        self.style = style
        self.terminal = terminal
        self.prompt = ""  # a prompt the console wrote, still waiting for its line
        self._text: TerminalText | None = None

    def print(self, lines: Sequence[str]) -> None:
        """Print lines (prompt_toolkit keeps its own prompt below whatever is printed)."""
        if self.prompt:
            self.out.write("\n")  # leave the prompt where it was and print below it
        if self.terminal:
            # Sized each time: the window may have been resized since.
            width = shutil.get_terminal_size().columns
            if self._text is None or self._text.console.width != width:
                self._text = TerminalText(self.out, color=self.style.color, width=width)
            self._text.print(lines)
        else:
            self.out.write("\n".join(lines) + "\n")
        if self.prompt:
            self.out.write(self.prompt)  # and ask again
        self.out.flush()

    def notice(self, text: str) -> None:
        mark = "»" if self.style.unicode else ">"
        self.print([self.style.notice(f"{mark} {text}")])

    def error(self, text: str) -> None:
        self.print([self.style.error(text)])


class Feed:
    """Prints the workspace's news and remembers what the reader has seen and its numbers."""

    def __init__(self, double: SlackDouble, screen: Screen, *, user_id: str) -> None:
        self.double = double
        self.screen = screen
        self.style = screen.style
        self.user_id = user_id  # who reads: their DMs read "DM to you"
        self.names: Names = WorkspaceNames(double)
        self.controls: dict[int, ControlRef] = {}
        self.pending_views: collections.deque[str] = collections.deque()
        self.last_activity = 0.0
        self._control_numbers: dict[tuple[str, str, str | None, str], int] = {}
        self._message_numbers: dict[tuple[str, str], int] = {}
        self._messages_by_number: dict[int, tuple[str, str]] = {}
        self._seen: dict[tuple[str, str], str] = {}
        self._seen_ephemerals: dict[str, str] = {}
        self._shown: dict[tuple[str, str], list[str]] = {}  # as the reader last saw them

    async def on_event(self, item: RecordedCall | RecordedResponse) -> None:
        """The double's callback: something happened in the workspace."""
        self.last_activity = asyncio.get_running_loop().time()
        try:
            self._show_event(item)
            self.show_changes()
        except Exception:  # the bot must not notice a rendering bug
            log.exception("console: could not show %s", item)

    def _show_event(self, item: RecordedCall | RecordedResponse) -> None:
        if isinstance(item, RecordedResponse):
            if item.http_status != 200:
                self.screen.notice(
                    f"the bot's response_url post was refused (HTTP {item.http_status})"
                )
            return
        if not item.ok:
            error = item.response.get("error") or f"HTTP {item.http_status}"
            if item.method not in _QUIET_FAILURES and (item.method, error) not in _ALREADY_DONE:
                self.screen.error(f"! Slack answered {item.method}: {error}")
            return
        if item.method in ("views.open", "views.push"):
            view = item.response.get("view") or {}
            if view.get("id"):
                self.pending_views.append(str(view["id"]))
            return
        notice = render_notice(
            item.method,
            item.params,
            item.response,
            names=self.names,
            message_label=self.message_label,
            bot_name=BOT_NAME,
            style=self.style,
        )
        if notice:
            self.screen.notice(notice)

    def show_changes(self) -> None:
        """Print messages that are new or edited since last time, and note deletions."""
        fresh: list[tuple[float, Channel, dict[str, Any], bool]] = []
        for channel in list(self.double.state.channels.values()):
            present: set[str] = set()
            for message in channel.messages:
                ts = str(message["ts"])
                present.add(ts)
                seen = self._seen.get((channel.id, ts))
                print_ = fingerprint(message)
                if seen != print_:
                    self._seen[(channel.id, ts)] = print_
                    fresh.append((float(ts), channel, message, seen is not None))
            gone = [k for k in self._seen if k[0] == channel.id and k[1] not in present]
            for key in gone:
                del self._seen[key]
                self.screen.notice(f"{self.message_label(*key)} deleted from {self.where(channel)}")
        for _, channel, message, edited in sorted(fresh, key=lambda item: item[0]):
            self.show_message(channel, message, edited=edited)
        for ephemeral in self.double.ephemerals:
            ts = str(ephemeral.get("message_ts"))
            print_ = fingerprint(ephemeral)
            seen = self._seen_ephemerals.get(ts)
            if seen != print_:
                self._seen_ephemerals[ts] = print_
                self._show_ephemeral(ephemeral, edited=seen is not None)

    def own_message(self, channel: Channel, message: Mapping[str, Any]) -> int:
        """A message the reader wrote: already seen, but numbered like any other."""
        ts = str(message["ts"])
        self._seen[(channel.id, ts)] = fingerprint(message)
        return self.message_number(channel.id, ts)

    def message_at(self, number: int) -> tuple[str, str] | None:
        """(channel ID, ts) of message `number`."""
        return self._messages_by_number.get(number)

    def _numbering(self, scope: str, ts: str, *, ephemeral: bool) -> Numbering:
        """Stable numbers: an edited message keeps the numbers of the buttons it kept."""

        def number(block_id: str | None, action_id: str) -> int:
            key = (scope, ts, block_id, action_id)
            if key not in self._control_numbers:
                self._control_numbers[key] = len(self._control_numbers) + 1
            found = self._control_numbers[key]
            channel_id = None if scope == "ephemeral" else scope
            if ephemeral:
                channel_id = next(
                    (e.get("channel") for e in self.double.ephemerals if e.get("message_ts") == ts),
                    None,
                )
            self.controls[found] = ControlRef(channel_id, ts, ephemeral, block_id, action_id)
            return found

        return number

    def message_number(self, channel_id: str, ts: str) -> int:
        key = (channel_id, ts)
        if key not in self._message_numbers:
            number = len(self._message_numbers) + 1
            self._message_numbers[key] = number
            self._messages_by_number[number] = key
        return self._message_numbers[key]

    def message_label(self, channel_id: str, ts: str) -> str:
        channel = self.double.state.find_channel(channel_id) if channel_id else None
        key = (channel.id if channel else channel_id, ts)
        number = self._message_numbers.get(key)
        return f"msg {number}" if number else "a message"

    def where(self, channel: Channel | None) -> str:
        if channel is None:
            return "(no channel)"
        if channel.is_im:
            other = channel.user or "?"
            return (
                "DM to you"
                if other == self.user_id
                else f"DM to @{self.names.user(other) or other}"
            )
        if channel.is_mpim:
            return "group DM"
        return f"#{channel.name}"

    def where_id(self, channel_id: str | None) -> str:
        channel = self.double.state.channels.get(channel_id or "")
        return self.where(channel) if channel else f"#{channel_id}"

    def _author(self, message: Mapping[str, Any]) -> str:
        profile = message.get("bot_profile")
        if isinstance(profile, Mapping) and profile.get("name"):
            return str(profile["name"])
        user_id = str(message.get("user") or "")
        return self.names.user(user_id) or user_id or "someone"

    def show_message(
        self,
        channel: Channel,
        message: Mapping[str, Any],
        *,
        edited: bool,
        whole: bool = False,
    ) -> None:
        ts = str(message["ts"])
        tags = [f"msg {self.message_number(channel.id, ts)}"]
        parent = message.get("thread_ts")
        if parent and parent != ts:
            tags.append(f"reply to {self.message_label(channel.id, str(parent))}")
            if message.get("subtype") == "thread_broadcast":
                tags.append("also sent to the channel")
        rendered = render_message(
            message,
            names=self.names,
            style=self.style,
            number=self._numbering(channel.id, ts, ephemeral=False),
        )
        where, author = self.where(channel), self._author(message)
        self._show((channel.id, ts), where, author, tags, rendered.lines, edited, whole)

    def _show_ephemeral(self, ephemeral: Mapping[str, Any], *, edited: bool) -> None:
        user = str(ephemeral.get("user") or "")
        tags = ["only you" if user == self.user_id else f"only @{self.names.user(user) or user}"]
        ts = str(ephemeral["message_ts"])
        channel = self.double.state.channels.get(str(ephemeral.get("channel") or ""))
        rendered = render_message(
            ephemeral,
            names=self.names,
            style=self.style,
            number=self._numbering("ephemeral", ts, ephemeral=True),
        )
        key = ("ephemeral", ts)
        self._show(key, self.where(channel), BOT_NAME, tags, rendered.lines, edited, False)

    def _show(
        self,
        key: tuple[str, str],
        where: str,
        author: str,
        tags: list[str],
        lines: list[str],
        edited: bool,
        whole: bool,
    ) -> None:
        """Print a message; an edit shows only what changed since the reader last saw it."""
        before = self._shown.get(key)
        self._shown[key] = lines
        if edited and before is not None and not whole:
            lines = changed_lines(before, lines, style=self.style)
            if not lines:
                return  # an edit nobody could see (the same text again)
            tags = [*tags, "edited (what changed)"]
        elif edited:
            tags = [*tags, "edited"]
        top = headline(where, author, tags, style=self.style)
        self.screen.print(["", top, *indent(lines)])
