"""Styles, display names and Slack mrkdwn as terminal text (pure functions)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from rich.emoji import Emoji, NoEmoji
from rich.text import Text

from bot import refs
from bot.models import SYSTEM

Block = Mapping[str, Any]

# ----- styles ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Style:
    """How fancy the output may be: ANSI colours (TTY only) and non-ASCII characters."""

    color: bool = False
    unicode: bool = True

    def _sgr(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color and text else text

    def bold(self, text: str) -> str:
        return self._sgr("1", text)

    def dim(self, text: str) -> str:
        return self._sgr("2", text)

    def italic(self, text: str) -> str:
        return self._sgr("3", text)

    def strike(self, text: str) -> str:
        return self._sgr("9", text)

    def code(self, text: str) -> str:
        # Without colour the backticks stay: they are how plain text marks code.
        return self._sgr("36", text) if self.color else f"`{text}`"

    def where(self, text: str) -> str:
        return self._sgr("1;36", text)

    def tag(self, text: str) -> str:
        return self._sgr("33", text)

    def notice(self, text: str) -> str:
        return self._sgr("2;35", text)

    def error(self, text: str) -> str:
        return self._sgr("31", text)

    def control(self, text: str, button_style: str | None = None) -> str:
        code = {"primary": "1;32", "danger": "1;31"}.get(button_style or "", "1;33")
        return self._sgr(code, text)

    @property
    def dot(self) -> str:
        return "·" if self.unicode else "|"

    @property
    def rule(self) -> str:
        return ("─" if self.unicode else "-") * 40

    def without_color(self) -> Style:
        return replace(self, color=False)


PLAIN = Style(color=False, unicode=False)


# ----- names -------------------------------------------------------------------------------


class Names(Protocol):
    """Looks up display names; None means unknown (the ID is shown instead)."""

    def user(self, user_id: str) -> str | None: ...

    def channel(self, channel_id: str) -> str | None: ...

    def usergroup(self, group_id: str) -> str | None: ...


@dataclass(frozen=True)
class StaticNames:
    """Names from dictionaries (tests, or a snapshot of the workspace)."""

    users: Mapping[str, str] = field(default_factory=dict)
    channels: Mapping[str, str] = field(default_factory=dict)
    usergroups: Mapping[str, str] = field(default_factory=dict)

    def user(self, user_id: str) -> str | None:
        return self.users.get(user_id)

    def channel(self, channel_id: str) -> str | None:
        return self.channels.get(channel_id)

    def usergroup(self, group_id: str) -> str | None:
        return self.usergroups.get(group_id)


NO_NAMES = StaticNames()


# ----- mrkdwn ------------------------------------------------------------------------------

# Slack's names that rich's emoji table (the Unicode CLDR names Slack mostly shares) lacks.
_SLACK_EMOJI = {
    "large_orange_circle": "orange_circle",
    "large_yellow_circle": "yellow_circle",
    "large_green_circle": "green_circle",
}

_TOKEN = re.compile(r"<([^<>\n]+)>")
_EMOJI = re.compile(r":([a-z0-9_+'-]*[a-z][a-z0-9_+'-]*|[+-]1):")
_CODE_BLOCK = re.compile(r"```\n?(.*?)\n?```", re.DOTALL)
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_BOLD = re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?!\s)([^_\n]+?)(?<!\s)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?!\s)([^~\n]+?)(?<!\s)~(?![\w~])")
_SPECIAL_MENTIONS = {"here", "channel", "everyone"}


def unescape(text: str) -> str:
    """Slack escapes exactly these three characters in message text."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _emoji(match: re.Match[str]) -> str:
    name = match.group(1)
    try:
        return str(Emoji(_SLACK_EMOJI.get(name, name)))
    except NoEmoji:
        return match.group(0)


def emojize(text: str, style: Style) -> str:
    """`:fire:` -> 🔥 when the terminal speaks UTF-8; unknown names stay as they are."""
    if not style.unicode:
        return text
    return _EMOJI.sub(_emoji, text)


def _token(inner: str, names: Names) -> str:
    """One `<...>` token as a reader sees it in Slack."""
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        user_id = target[1:]
        return "@" + (names.user(user_id) or label.removeprefix("@") or user_id)
    if target.startswith("#"):
        channel_id = target[1:]
        return "#" + (names.channel(channel_id) or label.removeprefix("#") or channel_id)
    if target.startswith("!"):
        command, _, argument = target[1:].partition("^")
        if command == "date":
            return label or argument.split("^", 1)[-1] or "date"
        if command == "subteam":
            group = names.usergroup(argument) or label.removeprefix("@") or argument
            return "@" + group
        if command in _SPECIAL_MENTIONS:
            return "@" + command
        return label or "@" + command
    if label:
        bare = target.removeprefix("mailto:")
        plain_target = re.sub(r"^[a-z]+://", "", target)
        if label in (target, bare, plain_target):
            return label
        if target.startswith("mailto:"):
            return f"{label} <{bare}>"
        return f"{label} ({target})"
    return target.removeprefix("mailto:")


def rich_text(rich: refs.Rich, names: Names = NO_NAMES) -> str:
    """Rich text (bot.refs) as the console shows it: people, channels and groups by name."""

    def name(ref: refs.Ref) -> str:
        if isinstance(ref, refs.Person):
            if ref.user_id == SYSTEM.user_id:
                return "the bot"
            return "@" + (names.user(ref.user_id) or ref.user_id)
        if isinstance(ref, refs.Channel):
            return "#" + (names.channel(ref.channel_id) or ref.channel_id)
        return "@" + (names.usergroup(ref.group_id) or ref.group_id)

    return refs.plain(rich, name)


def _inline(text: str, names: Names, style: Style) -> str:
    """Tokens, emphasis and emoji of text that is not code."""
    text = _TOKEN.sub(lambda m: _token(m.group(1), names), text)
    text = _BOLD.sub(lambda m: style.bold(m.group(1)), text)
    text = _ITALIC.sub(lambda m: style.italic(m.group(1)), text)
    text = _STRIKE.sub(lambda m: style.strike(m.group(1)), text)
    return unescape(emojize(text, style))


def clean_mrkdwn(text: str, names: Names = NO_NAMES, style: Style = PLAIN) -> str:
    """Slack mrkdwn as readable terminal text (code is left alone, apart from entities)."""
    out: list[str] = []
    position = 0
    for block in _CODE_BLOCK.finditer(text):
        out.append(_spans(text[position : block.start()], names, style))
        code = unescape(block.group(1))
        out.append(
            "\n".join(style.code(line) if style.color else line for line in code.split("\n"))
        )
        position = block.end()
    out.append(_spans(text[position:], names, style))
    return "".join(out)


def _spans(text: str, names: Names, style: Style) -> str:
    out: list[str] = []
    position = 0
    for span in _CODE_SPAN.finditer(text):
        out.append(_inline(text[position : span.start()], names, style))
        out.append(style.code(unescape(span.group(1))))
        position = span.end()
    out.append(_inline(text[position:], names, style))
    return "".join(out)


def text_of(obj: Any, names: Names = NO_NAMES, style: Style = PLAIN) -> str:
    """A text object (plain_text or mrkdwn), or a bare string, as terminal text."""
    if obj is None:
        return ""
    if isinstance(obj, str):
        return clean_mrkdwn(obj, names, style)
    if not isinstance(obj, Mapping):
        return str(obj)
    raw = str(obj.get("text", ""))
    if obj.get("type") == "plain_text":
        # plain_text is shown verbatim, except :emoji: when `emoji` is on (Slack's default).
        return emojize(raw, style) if obj.get("emoji", True) else raw
    return clean_mrkdwn(raw, names, style)


def strip_ansi(text: str) -> str:
    """The text without its colour codes."""
    return Text.from_ansi(text).plain
