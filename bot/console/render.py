"""Slack messages, modals and workspace events as terminal text, for `chatops-bot console`.

Pure functions: Block Kit and mrkdwn in, lines of text out. No I/O, no Slack client, so every
rule here is unit-tested (tests/unit/test_console_render.py) and the console module only
decides *when* to print.

- Headers are uppercase (and bold with colour), section fields read `Label: value`, context
  lines are dimmed, dividers are a rule.
- mrkdwn is cleaned up: `<@U1>` -> `@name`, `<#C1>` -> `#name`, `<!date^...|fallback>` ->
  fallback, `<!subteam^S1>` -> `@group`, links -> `label (url)`, `*bold*` -> bold, entities
  decoded, known `:emoji:` -> the character when the terminal speaks UTF-8.
- Interactive elements get a number (`[1] Acknowledge`) handed out by the caller, so the
  console can keep numbers stable when a message is edited.
"""

from __future__ import annotations

import difflib
import itertools
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

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

# A few emoji the bot and its users are likely to use; anything else stays `:name:`.
EMOJI = {
    "red_circle": "🔴",
    "large_orange_circle": "🟠",
    "large_yellow_circle": "🟡",
    "large_blue_circle": "🔵",
    "large_green_circle": "🟢",
    "white_circle": "⚪",
    "black_circle": "⚫",
    "warning": "⚠",
    "no_entry": "⛔",
    "no_entry_sign": "🚫",
    "rotating_light": "🚨",
    "fire": "🔥",
    "pushpin": "📌",
    "round_pushpin": "📍",
    "eyes": "👀",
    "white_check_mark": "✅",
    "heavy_check_mark": "✔",
    "ballot_box_with_check": "☑",
    "x": "❌",
    "hourglass": "⌛",
    "hourglass_flowing_sand": "⏳",
    "alarm_clock": "⏰",
    "stopwatch": "⏱",
    "mag": "🔍",
    "wrench": "🔧",
    "hammer_and_wrench": "🛠",
    "bell": "🔔",
    "pager": "📟",
    "memo": "📝",
    "page_facing_up": "📄",
    "clipboard": "📋",
    "bar_chart": "📊",
    "chart_with_upwards_trend": "📈",
    "chart_with_downwards_trend": "📉",
    "link": "🔗",
    "lock": "🔒",
    "key": "🔑",
    "bulb": "💡",
    "information_source": "ℹ",
    "question": "❓",
    "exclamation": "❗",
    "arrow_right": "➡",
    "arrow_up": "⬆",
    "arrow_down": "⬇",
    "repeat": "🔁",
    "rocket": "🚀",
    "tada": "🎉",
    "thumbsup": "👍",
    "+1": "👍",
    "thumbsdown": "👎",
    "-1": "👎",
    "raised_hands": "🙌",
    "sos": "🆘",
    "construction": "🚧",
    "boom": "💥",
    "skull": "💀",
    "speech_balloon": "💬",
    "busts_in_silhouette": "👥",
    "bust_in_silhouette": "👤",
    "calendar": "📆",
    "green_heart": "💚",
    "heart": "❤",
    "checkered_flag": "🏁",
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


def emojize(text: str, style: Style) -> str:
    """`:fire:` -> 🔥 when the terminal speaks UTF-8; unknown names stay as they are."""
    if not style.unicode:
        return text
    return _EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), text)


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


# ----- interactive elements ----------------------------------------------------------------

# Message elements the console can operate; others are shown without a number.
CLICKABLE = {"button", "static_select", "overflow", "radio_buttons"}
_SELECT_LABEL = {
    "static_select": "choose",
    "overflow": "more",
    "radio_buttons": "choose",
}


@dataclass(frozen=True)
class Option:
    """A choice in a select, overflow, radio or checkbox group."""

    label: str
    value: str
    raw: Mapping[str, Any]


@dataclass(frozen=True)
class Control:
    """A numbered interactive element of a rendered message."""

    number: int
    kind: str
    action_id: str
    block_id: str | None
    label: str
    element: Mapping[str, Any]

    @property
    def options(self) -> list[Option]:
        return options_of(self.element)


Numbering = Callable[[str | None, str], int]
"""Hands out a number for the element (block_id, action_id) of the message being rendered."""


def counter(start: int = 1) -> Numbering:
    """Plain sequential numbering (tests; messages rendered once)."""
    numbers = itertools.count(start)
    return lambda _block_id, _action_id: next(numbers)


def options_of(element: Mapping[str, Any], names: Names = NO_NAMES) -> list[Option]:
    """The options of a select-like element, option groups flattened."""
    raw_options: list[Mapping[str, Any]] = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        raw_options.extend(group.get("options") or [])
    return [
        Option(label=text_of(o.get("text"), names, PLAIN), value=str(o.get("value", "")), raw=o)
        for o in raw_options
        if isinstance(o, Mapping)
    ]


def _control_label(element: Mapping[str, Any], names: Names, style: Style) -> str:
    kind = element.get("type", "")
    if kind == "button":
        label = text_of(element.get("text"), names, style.without_color())
        if element.get("url"):
            label += " ↗" if style.unicode else " (link)"
        return label
    initial = element.get("initial_option")
    if isinstance(initial, Mapping):
        return text_of(initial.get("text"), names, style.without_color()) + (
            " ▾" if style.unicode else " v"
        )
    placeholder = text_of(element.get("placeholder"), names, style.without_color())
    if kind == "overflow":
        return "⋯" if style.unicode else "..."
    return (placeholder or _SELECT_LABEL.get(kind, kind)) + (" ▾" if style.unicode else " v")


def _render_element(
    element: Mapping[str, Any],
    block_id: str | None,
    names: Names,
    style: Style,
    number: Numbering,
    controls: list[Control],
) -> str:
    kind = str(element.get("type", ""))
    if kind == "image":
        return style.dim(f"[image: {element.get('alt_text', '')}]")
    action_id = element.get("action_id")
    label = _control_label(element, names, style)
    if kind not in CLICKABLE or not action_id:
        what = label if kind == "button" else kind.replace("_", " ")
        return style.dim(f"({what}: not available in the console)")
    control = Control(
        number=number(block_id, str(action_id)),
        kind=kind,
        action_id=str(action_id),
        block_id=block_id,
        label=label,
        element=element,
    )
    controls.append(control)
    return style.control(f"[{control.number}] {label}", element.get("style"))


def find_element(
    blocks: Iterable[Block] | None, action_id: str, block_id: str | None = None
) -> Mapping[str, Any] | None:
    """The interactive element with `action_id` (in `block_id` when it still exists)."""
    fallback: Mapping[str, Any] | None = None
    for block in blocks or []:
        candidates = list(block.get("elements") or [])
        for key in ("accessory", "element"):
            if isinstance(block.get(key), Mapping):
                candidates.append(block[key])
        for element in candidates:
            if isinstance(element, Mapping) and element.get("action_id") == action_id:
                if block_id is None or block.get("block_id") == block_id:
                    return element
                fallback = fallback or element
    return fallback


def confirm_question(element: Mapping[str, Any], names: Names = NO_NAMES) -> tuple[str, str] | None:
    """An element's confirm dialog as (question, `[y = ... / N = ...] ` prompt), or None."""
    confirm = element.get("confirm")
    if not isinstance(confirm, Mapping):
        return None
    title = text_of(confirm.get("title"), names, PLAIN) or "Are you sure?"
    text = text_of(confirm.get("text"), names, PLAIN)
    yes = text_of(confirm.get("confirm"), names, PLAIN) or "Yes"
    no = text_of(confirm.get("deny"), names, PLAIN) or "Cancel"
    joiner = " " if title.endswith(("?", "!", ".", ":")) else ": "
    question = f"{title}{joiner}{text}" if text else title
    return question, f"[y = {yes} / N = {no}] "


# ----- blocks ------------------------------------------------------------------------------


@dataclass
class Rendered:
    """Lines to print (unindented) and the numbered controls among them."""

    lines: list[str] = field(default_factory=list)
    controls: list[Control] = field(default_factory=list)


_FIELD = re.compile(r"^\*([^*\n]+)\*\s*\n(.*)$", re.DOTALL)


def render_field(obj: Any, names: Names, style: Style) -> list[str]:
    """A section field: `*Label*\\nvalue` reads `Label: value`; anything else as it is."""
    raw = obj.get("text", "") if isinstance(obj, Mapping) else str(obj)
    match = _FIELD.match(raw) if isinstance(obj, Mapping) and obj.get("type") == "mrkdwn" else None
    if match is None:
        return text_of(obj, names, style).split("\n")
    label = clean_mrkdwn(match.group(1), names, style.without_color())
    value_lines = clean_mrkdwn(match.group(2), names, style).split("\n")
    first = f"{style.bold(label + ':')} {value_lines[0]}".rstrip()
    return [first, *("  " + line for line in value_lines[1:])]


def _rich_text_elements(elements: Iterable[Any], names: Names, style: Style) -> str:
    parts: list[str] = []
    for element in elements:
        if not isinstance(element, Mapping):
            continue
        kind = element.get("type")
        if kind == "text":
            text = str(element.get("text", ""))
            text_style = element.get("style") or {}
            if text_style.get("code"):
                text = style.code(text)
            elif text_style.get("bold"):
                text = style.bold(text)
            elif text_style.get("italic"):
                text = style.italic(text)
            parts.append(text)
        elif kind == "user":
            user_id = str(element.get("user_id", ""))
            parts.append("@" + (names.user(user_id) or user_id))
        elif kind == "channel":
            channel_id = str(element.get("channel_id", ""))
            parts.append("#" + (names.channel(channel_id) or channel_id))
        elif kind == "usergroup":
            group_id = str(element.get("usergroup_id", ""))
            parts.append("@" + (names.usergroup(group_id) or group_id))
        elif kind == "broadcast":
            parts.append("@" + str(element.get("range", "here")))
        elif kind == "emoji":
            parts.append(emojize(f":{element.get('name', '')}:", style))
        elif kind == "link":
            url = str(element.get("url", ""))
            label = element.get("text")
            parts.append(f"{label} ({url})" if label and label != url else url)
        elif kind == "date":
            parts.append(str(element.get("fallback") or element.get("timestamp", "")))
    return "".join(parts)


def _render_rich_text(block: Block, names: Names, style: Style) -> list[str]:
    lines: list[str] = []
    for element in block.get("elements") or []:
        kind = element.get("type")
        if kind == "rich_text_section":
            lines += _rich_text_elements(element.get("elements") or [], names, style).split("\n")
        elif kind == "rich_text_list":
            ordered = element.get("style") == "ordered"
            indent = "  " * int(element.get("indent", 0))
            for n, item in enumerate(element.get("elements") or [], 1):
                bullet = f"{n}." if ordered else ("•" if style.unicode else "-")
                text = _rich_text_elements(item.get("elements") or [], names, style)
                lines.append(f"{indent}{bullet} {text}")
        elif kind == "rich_text_preformatted":
            text = _rich_text_elements(element.get("elements") or [], names, style.without_color())
            lines += ["    " + line for line in text.split("\n")]
        elif kind == "rich_text_quote":
            text = _rich_text_elements(element.get("elements") or [], names, style)
            lines += ["> " + line for line in text.split("\n")]
    return lines


def render_blocks(
    blocks: Sequence[Block],
    *,
    names: Names = NO_NAMES,
    style: Style = PLAIN,
    number: Numbering | None = None,
) -> Rendered:
    """Blocks as lines of text; interactive elements numbered by `number`."""
    number = number or counter()
    out = Rendered()
    for block in blocks:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        block_id = block.get("block_id")
        if kind == "header":
            title = text_of(block.get("text"), names, style.without_color()).upper()
            out.lines.append(style.bold(title))
        elif kind == "section":
            if block.get("text"):
                out.lines += text_of(block.get("text"), names, style).split("\n")
            for field_obj in block.get("fields") or []:
                out.lines += render_field(field_obj, names, style)
            accessory = block.get("accessory")
            if isinstance(accessory, Mapping):
                out.lines.append(
                    _render_element(accessory, block_id, names, style, number, out.controls)
                )
        elif kind == "context":
            plain = style.without_color()
            parts = [
                f"[{e.get('alt_text', 'image')}]"
                if e.get("type") == "image"
                else text_of(e, names, plain)
                for e in block.get("elements") or []
                if isinstance(e, Mapping)
            ]
            for line in "  ".join(parts).split("\n"):
                out.lines.append(style.dim(line))
        elif kind == "divider":
            out.lines.append(style.dim(style.rule))
        elif kind == "actions":
            rendered = [
                _render_element(e, block_id, names, style, number, out.controls)
                for e in block.get("elements") or []
                if isinstance(e, Mapping)
            ]
            out.lines.append("  ".join(rendered))
        elif kind == "image":
            title = text_of(block.get("title"), names, style) or block.get("alt_text", "")
            out.lines.append(style.dim(f"[image: {title}]"))
        elif kind == "rich_text":
            out.lines += _render_rich_text(block, names, style)
        elif kind == "input":
            label = text_of(block.get("label"), names, style.without_color())
            out.lines.append(f"{label}: " + style.dim("(input)"))
        elif kind == "file":
            out.lines.append(style.dim(f"[file {block.get('file_id', '')}]"))
        else:
            out.lines.append(style.dim(f"[{kind} block]"))
    return out


def _render_attachment(attachment: Mapping[str, Any], names: Names, style: Style) -> list[str]:
    bar = "▌ " if style.unicode else "| "
    lines: list[str] = []
    for key in ("pretext", "title", "text"):
        if attachment.get(key):
            text = clean_mrkdwn(str(attachment[key]), names, style)
            lines += [style.bold(text)] if key == "title" else text.split("\n")
    for f in attachment.get("fields") or []:
        lines.append(f"{style.bold(str(f.get('title', '')) + ':')} {f.get('value', '')}")
    if attachment.get("footer"):
        lines.append(style.dim(clean_mrkdwn(str(attachment["footer"]), names, style)))
    return [bar + line for line in lines]


def render_message(
    message: Mapping[str, Any],
    *,
    names: Names = NO_NAMES,
    style: Style = PLAIN,
    number: Numbering | None = None,
) -> Rendered:
    """A posted message: its blocks (or text when it has none), attachments and files."""
    number = number or counter()
    blocks = message.get("blocks") or []
    if blocks:
        out = render_blocks(blocks, names=names, style=style, number=number)
    else:
        text = str(message.get("text") or "")
        out = Rendered(lines=clean_mrkdwn(text, names, style).split("\n") if text else [])
    for attachment in message.get("attachments") or []:
        if isinstance(attachment, Mapping):
            out.lines += _render_attachment(attachment, names, style)
            inner = attachment.get("blocks") or []
            if inner:
                nested = render_blocks(inner, names=names, style=style, number=number)
                out.lines += nested.lines
                out.controls += nested.controls
    clip = "📎 " if style.unicode else "file: "
    for shared in message.get("files") or []:
        if isinstance(shared, Mapping):
            title = shared.get("title") or shared.get("name") or shared.get("id")
            out.lines.append(f"{clip}{title} ({shared.get('size', 0)} bytes)")
    reactions = [
        emojize(f":{r.get('name')}:", style) + f" {r.get('count', 1)}"
        for r in message.get("reactions") or []
    ]
    if reactions:
        out.lines.append(style.dim("   ".join(reactions)))
    return out


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def visible_width(text: str) -> int:
    """Columns a terminal uses for `text`: colour codes take none, wide characters two."""
    plain = strip_ansi(text)
    return sum(
        0
        if unicodedata.combining(c) or c == "\ufe0f"
        else 2
        if unicodedata.east_asian_width(c) in "WF"
        else 1
        for c in plain
    )


def wrap(line: str, width: int) -> list[str]:
    """Break a long line at spaces; continuation lines hang two columns under its text."""
    if width < 20 or visible_width(line) <= width:
        return [line]
    lead = len(line) - len(line.lstrip(" "))
    hang = " " * min(lead + 2, width // 2)
    out: list[str] = []
    current, current_width, empty = line[:lead], lead, True
    for word in line[lead:].split(" "):
        word_width = visible_width(word)
        if not empty and word_width and current_width + 1 + word_width > width:
            out.append(current)
            current, current_width, empty = hang, len(hang), True
        current += word if empty else " " + word
        current_width += word_width if empty else 1 + word_width
        empty = False
    out.append(current)
    return out


def changed_lines(
    before: Sequence[str], after: Sequence[str], *, style: Style = PLAIN
) -> list[str]:
    """What an edit changed, for a reader who saw `before`: new or changed lines, removed
    lines marked, and the first line for context. Empty when nothing visible changed."""
    out: list[str] = []
    matcher = difflib.SequenceMatcher(a=list(before), b=list(after), autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "insert"):
            out += after[j1:j2]
        if tag == "delete" or (tag == "replace" and i2 - i1 > j2 - j1):
            first_gone = i1 if tag == "delete" else i1 + (j2 - j1)
            out += [style.dim(f"(removed) {strip_ansi(line)}") for line in before[first_gone:i2]]
    if out and after and after[0] not in out:
        out.insert(0, style.dim(strip_ansi(after[0])))  # which message this is, at a glance
    return out


def headline(where: str, author: str, tags: Sequence[str] = (), *, style: Style = PLAIN) -> str:
    """The line above a message: `#incidents · chatops-bot · msg 3 · edited`."""
    parts = [style.where(where), style.bold(author), *(style.tag(tag) for tag in tags)]
    return f" {style.dot} ".join(parts)


def indent(lines: Iterable[str], prefix: str = "  ") -> list[str]:
    return [prefix + line if line else line for line in lines]


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


# ----- modals ------------------------------------------------------------------------------

# Element types whose answer is typed as text.
_TEXT_INPUTS = {
    "plain_text_input": "value",
    "number_input": "value",
    "email_text_input": "value",
    "url_text_input": "value",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
    "users_select": "selected_user",
    "conversations_select": "selected_conversation",
    "channels_select": "selected_channel",
}
_MULTI_TEXT_INPUTS = {
    "multi_users_select": "selected_users",
    "multi_conversations_select": "selected_conversations",
    "multi_channels_select": "selected_channels",
}
_CHOICE_INPUTS = {"static_select": False, "radio_buttons": False}
_MULTI_CHOICE_INPUTS = {"multi_static_select", "checkboxes"}
_HINTS = {
    "number_input": "a number",
    "email_text_input": "an email address",
    "url_text_input": "a URL",
    "datepicker": "YYYY-MM-DD",
    "timepicker": "HH:MM",
    "users_select": "a user ID such as U0BOB",
    "conversations_select": "a channel ID such as C0123",
    "channels_select": "a channel ID such as C0123",
    "multi_users_select": "user IDs, comma-separated",
    "multi_conversations_select": "channel IDs, comma-separated",
    "multi_channels_select": "channel IDs, comma-separated",
}


@dataclass(frozen=True)
class InputField:
    """One input block of a modal, as the console asks for it."""

    block_id: str
    action_id: str
    kind: str
    label: str
    optional: bool = False
    hint: str = ""
    placeholder: str = ""
    multiline: bool = False
    initial: str = ""  # as the user would type it (option numbers for choices)
    options: tuple[Option, ...] = ()

    @property
    def is_choice(self) -> bool:
        return self.kind in _CHOICE_INPUTS or self.kind in _MULTI_CHOICE_INPUTS

    @property
    def is_multi(self) -> bool:
        return self.kind in _MULTI_CHOICE_INPUTS or self.kind in _MULTI_TEXT_INPUTS

    @property
    def supported(self) -> bool:
        return self.kind in _TEXT_INPUTS or self.kind in _MULTI_TEXT_INPUTS or self.is_choice


def _initial(element: Mapping[str, Any], options: Sequence[Option]) -> str:
    kind = element.get("type", "")
    values = [o.value for o in options]

    def index_of(option: Any) -> str:
        value = option.get("value") if isinstance(option, Mapping) else None
        return str(values.index(value) + 1) if value in values else ""

    if kind in _CHOICE_INPUTS:
        return index_of(element.get("initial_option"))
    if kind in _MULTI_CHOICE_INPUTS:
        picked = [index_of(o) for o in element.get("initial_options") or []]
        return ",".join(p for p in picked if p)
    for key in (
        "initial_value",
        "initial_date",
        "initial_time",
        "initial_user",
        "initial_conversation",
        "initial_channel",
    ):
        if element.get(key):
            return str(element[key])
    for key in ("initial_users", "initial_conversations", "initial_channels"):
        if element.get(key):
            return ",".join(element[key])
    return ""


def input_fields(view: Mapping[str, Any], names: Names = NO_NAMES) -> list[InputField]:
    """The input blocks of a modal, in order."""
    fields: list[InputField] = []
    for n, block in enumerate(view.get("blocks") or []):
        if not isinstance(block, Mapping) or block.get("type") != "input":
            continue
        element = block.get("element") or {}
        options = tuple(options_of(element, names))
        fields.append(
            InputField(
                block_id=str(block.get("block_id") or f"input_{n}"),
                action_id=str(element.get("action_id") or f"action_{n}"),
                kind=str(element.get("type", "")),
                label=text_of(block.get("label"), names, PLAIN),
                optional=bool(block.get("optional")),
                hint=text_of(block.get("hint"), names, PLAIN),
                placeholder=text_of(element.get("placeholder"), names, PLAIN),
                multiline=bool(element.get("multiline")),
                initial=_initial(element, options),
                options=options,
            )
        )
    return fields


def render_view(
    view: Mapping[str, Any], *, names: Names = NO_NAMES, style: Style = PLAIN
) -> list[str]:
    """A modal's frame and its non-input blocks (inputs are asked one by one)."""
    title = text_of(view.get("title"), names, style.without_color())
    lines = [style.bold(f"┌ {title}" if style.unicode else f"+ {title}")]
    others = [b for b in view.get("blocks") or [] if b.get("type") != "input"]
    # Buttons inside a modal are not operable here: number them 0 so nobody types them.
    body = render_blocks(others, names=names, style=style, number=lambda _b, _a: 0)
    lines += indent(body.lines, "│ " if style.unicode else "| ")
    submit = text_of(view.get("submit"), names, PLAIN) or "Submit"
    close = text_of(view.get("close"), names, PLAIN) or "Cancel"
    lines.append(style.dim(f"(answer each field; it is sent as [{submit}]; :cancel is [{close}])"))
    return lines


def field_prompt(field_: InputField, style: Style = PLAIN) -> list[str]:
    """What to print before reading a field's answer; the last line is the prompt itself."""
    lines: list[str] = []
    need = "optional" if field_.optional else "required"
    # The placeholder reads as guidance, so it goes beside the label, not into the prompt
    # where it would look like a default.
    detail = field_.hint or field_.placeholder or _HINTS.get(field_.kind, "")
    heading = f"{style.bold(field_.label)} ({need})"
    if detail:
        heading += style.dim(f": {detail}")
    lines.append(heading)
    if field_.is_choice:
        for n, option in enumerate(field_.options, 1):
            lines.append(f"  {n}) {option.label}")
        how = "numbers, comma-separated" if field_.is_multi else "a number"
        lines.append(style.dim(f"  pick {how}" + (", or leave empty" if field_.optional else "")))
    elif field_.multiline:
        lines.append(style.dim("  several lines; an empty line ends the text"))
    if not field_.supported:
        lines.append(style.dim(f"  ({field_.kind}: type the value as Slack would send it)"))
    default = f" [{field_.initial}]" if field_.initial else ""
    lines.append(f"  {field_.label}{default}> ")
    return lines


def _pick(field_: InputField, answer: str) -> tuple[list[Option], str | None]:
    picked: list[Option] = []
    for part in [p.strip() for p in answer.split(",")] if field_.is_multi else [answer.strip()]:
        if not part:
            continue
        match = None
        if part.isdigit() and 1 <= int(part) <= len(field_.options):
            match = field_.options[int(part) - 1]
        else:
            lowered = part.lower()
            match = next(
                (o for o in field_.options if lowered in (o.label.lower(), o.value.lower())), None
            )
        if match is None:
            return [], f"'{part}' is not one of the choices (1-{len(field_.options)})"
        picked.append(match)
    return picked, None


def state_value(field_: InputField, answer: str) -> tuple[dict[str, Any] | None, str | None]:
    """The `state.values` leaf Slack would send for `answer`, or an error to show.

    An empty answer takes the field's initial value; empty and optional sends an empty value,
    empty and required is an error (Slack would not let the modal submit).
    """
    answer = answer.strip() or field_.initial
    if not answer and not field_.optional:
        return None, f"{field_.label} is required"
    kind = field_.kind
    if field_.is_choice:
        picked, error = _pick(field_, answer)
        if error:
            return None, error
        raw = [dict(o.raw) for o in picked]
        if field_.is_multi:
            return {"type": kind, "selected_options": raw}, None
        return {"type": kind, "selected_option": raw[0] if raw else None}, None
    if kind in _MULTI_TEXT_INPUTS:
        values = [p.strip() for p in answer.split(",") if p.strip()]
        return {"type": kind, _MULTI_TEXT_INPUTS[kind]: values}, None
    key = _TEXT_INPUTS.get(kind, "value")
    value: str | None = answer or None
    if kind == "number_input" and value is not None:
        try:
            float(value)
        except ValueError:
            return None, f"'{value}' is not a number"
    return {"type": kind, key: value}, None


def view_errors(errors: Mapping[str, Any], fields: Sequence[InputField]) -> list[str]:
    """`response_action: errors` as lines: `Label: message` for every field named."""
    labels = {f.block_id: f.label for f in fields}
    return [f"{labels.get(block_id, block_id)}: {message}" for block_id, message in errors.items()]
