"""Messages and their blocks as lines of text; interactive elements numbered by the caller."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.console.render.controls import Control, Numbering, counter, render_element, with_block_ids
from bot.console.render.text import (
    NO_NAMES,
    PLAIN,
    Block,
    Names,
    Style,
    clean_mrkdwn,
    emojize,
    strip_ansi,
    text_of,
)

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
    blocks: Sequence[Block | object],  # anything in a payload: what is no block is skipped
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
                    render_element(accessory, block_id, names, style, number, out.controls)
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
                render_element(e, block_id, names, style, number, out.controls)
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
    message = with_block_ids(message)
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
