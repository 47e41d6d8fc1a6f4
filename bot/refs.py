"""People, channels and groups as data, and text made of them ("rich text").

Domain code never writes Slack markup: it builds a `Rich` value, a tuple of plain strings and
references, and each surface renders it once (bot/slack/rich.py for mrkdwn, the report's
Markdown, the console and the CLI with names, the status page with names only).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.models import SYSTEM, TimelineEvent


@dataclass(frozen=True, slots=True)
class Person:
    user_id: str


@dataclass(frozen=True, slots=True)
class Channel:
    channel_id: str


@dataclass(frozen=True, slots=True)
class Group:
    group_id: str


Ref = Person | Channel | Group
Part = str | Ref
Rich = tuple[Part, ...]


def text(*parts: Part) -> Rich:
    """Parts as one rich value: neighbouring strings joined, empty ones dropped."""
    out: list[Part] = []
    for part in parts:
        if isinstance(part, str):
            if not part:
                continue
            if out and isinstance(out[-1], str):
                out[-1] = out[-1] + part
                continue
        out.append(part)
    return tuple(out)


def person_or_group(target: str) -> Ref:
    """A paging target: a Slack user group (`S…`) or a person."""
    return Group(target) if target.startswith("S") else Person(target)


def handle(ref: Ref) -> str:
    """A reference as a readable handle without a directory: `@U1`, `#C1`, `@S1`; the bot's
    own actor as "the bot" (it is no Slack user)."""
    if isinstance(ref, Person):
        return "the bot" if ref.user_id == SYSTEM.user_id else f"@{ref.user_id}"
    if isinstance(ref, Channel):
        return f"#{ref.channel_id}"
    return f"@{ref.group_id}"


def plain(rich: Rich, name: Callable[[Ref], str] = handle) -> str:
    """The text a reader sees, each reference named by `name` (handles by default): the
    stored `text` of a timeline row, search, logs."""
    return "".join(part if isinstance(part, str) else name(part) for part in rich)


def words(rich: Rich, said: str) -> Rich:
    """`rich` without its end `said` (what a person wrote): the bot's own words and refs."""
    if not said:
        return rich
    last = rich[-1] if rich else ""
    if not isinstance(last, str) or not last.endswith(said):
        raise ValueError("`said` must be the end of the rich text")
    return text(*rich[:-1], last[: len(last) - len(said)])


# -- storage: JSON parts, and the one reader of rows written before parts were kept ---------

_KEYS: dict[str, Callable[[str], Ref]] = {"person": Person, "channel": Channel, "group": Group}


def dump(rich: Rich) -> list[Any]:
    """`rich` as JSON: strings as they are, references as one-key objects."""
    out: list[Any] = []
    for part in rich:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, Person):
            out.append({"person": part.user_id})
        elif isinstance(part, Channel):
            out.append({"channel": part.channel_id})
        else:
            out.append({"group": part.group_id})
    return out


def load(data: Any) -> Rich | None:
    """What `dump` wrote; None when `data` is not that (a row written before)."""
    if not isinstance(data, list):
        return None
    parts: list[Part] = []
    for item in data:
        if isinstance(item, str):
            parts.append(item)
        elif isinstance(item, dict) and len(item) == 1:
            ((key, value),) = item.items()
            if key not in _KEYS or not isinstance(value, str):
                return None
            parts.append(_KEYS[key](value))
        else:
            return None
    return tuple(parts)


# Rows and queued notices written before parts were kept hold Slack markup in the bot's own
# words (never in `said`: a person's words were stored plain). Read here, and only here.
_LEGACY = re.compile(r"<(?:@([UW][A-Z0-9]+)|#(C[A-Z0-9]+)|!subteam\^(S[A-Z0-9]+))(?:\|[^>]*)?>")


def legacy(stored: str, said: str = "") -> Rich:
    """A line stored as text with Slack markup (before parts were kept) as rich text; `said`,
    its end that a person wrote, is kept as text."""
    head = stored[: len(stored) - len(said)] if said and stored.endswith(said) else stored
    tail = stored[len(head) :]
    parts: list[Part] = []
    at = 0
    for match in _LEGACY.finditer(head):
        parts.append(head[at : match.start()])
        user, channel, group = match.groups()
        parts.append(Person(user) if user else Channel(channel) if channel else Group(group))
        at = match.end()
    parts += [head[at:], tail]
    return text(*parts)


def of_event(event: TimelineEvent) -> Rich:
    """A timeline event as rich text (one built by hand without parts: its text read)."""
    return event.parts or legacy(event.text, event.said)


def notice_payload(rich: Rich) -> dict[str, Any]:
    """A line queued for a notice (see IncidentFlows.notice): its plain text and parts."""
    return {"text": plain(rich), "parts": dump(rich)}
