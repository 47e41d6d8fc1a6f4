"""A message's interactive elements in the console: numbered controls (`[1] Acknowledge`),
their options and confirm dialogs, found again by action_id when one is pressed."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.console.render.text import NO_NAMES, PLAIN, Block, Names, Style, text_of

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


def render_element(
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


def with_block_ids(message: Mapping[str, Any]) -> dict[str, Any]:
    """The message as Slack keeps it: a block posted without a block_id gets one, so two
    elements that share an action_id (one Close button per action item) stay apart, and a
    press says which block it came from. Slack makes random IDs; these follow the position."""

    def filled(blocks: Any, prefix: str) -> list[Any]:
        return [
            {**block, "block_id": block.get("block_id") or f"{prefix}{index}"}
            if isinstance(block, Mapping)
            else block
            for index, block in enumerate(blocks or [])
        ]

    out = dict(message)
    if out.get("blocks"):
        out["blocks"] = filled(out["blocks"], "console-")
    if out.get("attachments"):
        out["attachments"] = [
            {**attachment, "blocks": filled(attachment["blocks"], f"console-a{number}-")}
            if isinstance(attachment, Mapping) and attachment.get("blocks")
            else attachment
            for number, attachment in enumerate(out["attachments"])
        ]
    return out


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
