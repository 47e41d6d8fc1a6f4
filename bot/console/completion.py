"""Tab completion at the console's prompt: commands, their words, channels, people, incidents.

What the bot understands is read from the bot, so a new command completes without a change
here: the slash commands from manifest.yml (beside the package in a checkout, which is where
the console runs from) and from the bot's own help, whose usage lines such as
`/incident update [INC-ID] <investigating|identified|monitoring|resolved> <message>` give
each subcommand and the words its arguments take. The live names (incident IDs, channels,
people) are refreshed by the console after every line it handles.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yml"
CONSOLE_COMMANDS = (":as", ":in", ":react", ":channels", ":history", ":help", ":quit")

_USAGE = re.compile(r"`(/[a-z][\w-]*)((?: [^`]*)?)`")
_SLOT = re.compile(r"^[<\[]?([^<>\[\]]*)[>\]]?$")


@dataclass(frozen=True)
class SlashCommand:
    """A slash command as the manifest declares it."""

    command: str
    usage_hint: str = ""
    description: str = ""


def manifest_commands(path: Path = MANIFEST) -> list[SlashCommand]:
    """The manifest's slash commands; none when it cannot be read (an installed package)."""
    try:
        manifest = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return []
    declared = (manifest.get("features") or {}).get("slash_commands") or []
    return [
        SlashCommand(
            str(entry["command"]),
            str(entry.get("usage_hint") or ""),
            str(entry.get("description") or ""),
        )
        for entry in declared
        if isinstance(entry, dict) and entry.get("command")
    ]


@dataclass
class Usage:
    """What one command (and subcommand) takes, from a usage line of the bot's help."""

    command: str
    subcommand: str | None
    words: set[str] = field(default_factory=set)  # literal choices: P1, resolved, eta...
    takes_incident: bool = False
    takes_person: bool = False


def usages_from_help(text: str) -> list[Usage]:
    """Every `/command sub <a|b> [INC-ID] ...` usage in a help text."""
    found: dict[tuple[str, str | None], Usage] = {}
    for command, rest in _USAGE.findall(text):
        tokens = rest.split()
        sub = tokens.pop(0) if tokens and re.fullmatch(r"[a-z][\w-]*", tokens[0]) else None
        usage = found.setdefault((command, sub), Usage(command, sub))
        for token in tokens:
            match = _SLOT.match(token)
            inner = match.group(1) if match else ""
            if inner == "INC-ID":
                usage.takes_incident = True
            elif inner.startswith("@"):
                usage.takes_person = True
            elif "|" in inner:
                usage.words |= {word for word in inner.split("|") if word}
            elif token.startswith("[") and not token.endswith("]") and inner.isalpha():
                usage.words.add(inner)  # an optional keyword such as `[eta <duration>]`
    return list(found.values())


@dataclass
class Vocabulary:
    """Everything the completer offers; the console keeps the live lists up to date."""

    slash_commands: list[str] = field(default_factory=list)
    usages: list[Usage] = field(default_factory=list)
    incident_ids: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)  # names, without '#'
    users: list[str] = field(default_factory=list)

    @classmethod
    def of_bot(cls, help_text: str, manifest: Iterable[SlashCommand] = ()) -> Vocabulary:
        usages = usages_from_help(help_text)
        commands = [c.command for c in manifest]
        commands += [u.command for u in usages if u.command not in commands]
        return cls(slash_commands=list(dict.fromkeys(commands)), usages=usages)

    def subcommands(self, command: str) -> list[str]:
        return [u.subcommand for u in self.usages if u.command == command and u.subcommand]

    def arguments(self, command: str, subcommand: str | None) -> list[str]:
        """The words that may follow `command subcommand`, incident IDs first."""
        usage = next(
            (u for u in self.usages if (u.command, u.subcommand) == (command, subcommand)), None
        )
        if usage is None:
            return []
        words = list(self.incident_ids) if usage.takes_incident else []
        words += sorted(usage.words)
        return words + (list(self.users) if usage.takes_person else [])


class ConsoleCompleter(Completer):
    """Completes the word before the cursor from the vocabulary."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary

    def candidates(self, line: str) -> list[str]:
        """What the last word of `line` may become (every choice, before filtering)."""
        words = line.split(" ")
        current, before = words[-1], [w for w in words[:-1] if w]
        vocabulary = self.vocabulary
        if not before:
            if current.startswith(":"):
                return list(CONSOLE_COMMANDS)
            if current.startswith("/") or not current:
                return vocabulary.slash_commands + ([] if current else list(CONSOLE_COMMANDS))
            return []  # chat, or a button's number
        head = before[0]
        if head in (":in", ":history") and len(before) == 1:
            return [f"#{name}" for name in vocabulary.channels]
        if head == ":as" and len(before) == 1:
            return list(vocabulary.users)
        if not head.startswith("/"):
            return []
        subcommands = vocabulary.subcommands(head)
        if len(before) == 1 and subcommands:
            return subcommands
        subcommand = before[1] if subcommands else None
        return vocabulary.arguments(head, subcommand.lower() if subcommand else None)

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        line = document.text_before_cursor
        current = line.split(" ")[-1]
        typed = current.lower()
        seen: set[str] = set()
        for candidate in self.candidates(line):
            if candidate.lower().startswith(typed) and candidate not in seen:
                seen.add(candidate)
                yield Completion(candidate, start_position=-len(current))
