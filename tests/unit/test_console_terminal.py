"""The console at a terminal: prompt_toolkit reads (history, Tab completion), rich wraps."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.input.base import PipeInput
from prompt_toolkit.output import DummyOutput

from bot.console.completion import ConsoleCompleter, Vocabulary, manifest_commands
from bot.console.terminal import PromptLines, TerminalText
from bot.slack.help_text import HELP_TEXT

UP = "\x1b[A"
TAB = "\t"
ENTER = "\r"


@pytest.fixture
def keys() -> Iterator[PipeInput]:
    """Keystrokes into prompt_toolkit, as a terminal would send them."""
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        yield pipe


def _completer() -> ConsoleCompleter:
    vocabulary = Vocabulary.of_bot(HELP_TEXT, manifest_commands())
    vocabulary.incident_ids = ["INC-20261127-002", "INC-20261127-001"]
    vocabulary.channels = ["general", "incidents", "inc-20261127-002-api-down"]
    return ConsoleCompleter(vocabulary)


async def _typed(lines: PromptLines, keys: PipeInput, *parts: str) -> str | None:
    """Type `parts` one after another, each once the line shows what the last one did.

    Tab completes in the background: the next keys must wait for it, as a person does.
    """
    reading = asyncio.create_task(lines.readline("> "))
    buffer = lines._commands.default_buffer
    for part, shows in zip(parts[::2], parts[1::2], strict=True):
        keys.send_text(part)
        deadline = asyncio.get_running_loop().time() + 5
        while not buffer.text.endswith(shows):
            assert asyncio.get_running_loop().time() < deadline, f"{buffer.text!r}"
            await asyncio.sleep(0.01)
    keys.send_text(ENTER)
    return await reading


async def test_tab_completes_commands_subcommands_and_incident_ids(keys: PipeInput) -> None:
    lines = PromptLines(completer=_completer())
    typed = await _typed(
        lines,
        keys,
        *("/inc" + TAB, "/incident"),
        *(" dec" + TAB, "/incident declare"),
        *(" P1 API down", "P1 API down"),
    )
    assert typed == "/incident declare P1 API down"
    typed = await _typed(lines, keys, "/incident ack inc-20261127-001" + TAB, "INC-20261127-001")
    assert typed == "/incident ack INC-20261127-001"


async def test_history_is_recalled_with_up_and_kept_between_sessions(
    keys: PipeInput, tmp_path: Path
) -> None:
    history = tmp_path / "console_history"
    lines = PromptLines(history_file=history)
    keys.send_text("/oncall P1" + ENTER)
    assert await lines.readline("> ") == "/oncall P1"
    keys.send_text("n" + ENTER)  # an answer to a question is not a command to recall
    assert await lines.readline("? ", history=False) == "n"

    later = PromptLines(history_file=history)  # the next session
    keys.send_text(UP + ENTER)
    assert await later.readline("> ") == "/oncall P1"


async def test_ctrl_d_ends_the_input_and_ctrl_c_interrupts(keys: PipeInput) -> None:
    lines = PromptLines()
    keys.send_text("\x03")
    with pytest.raises(KeyboardInterrupt):
        await lines.readline("> ")
    keys.send_text("\x04")
    assert await lines.readline("> ") is None


def test_completion_reads_the_manifest_and_the_bots_help() -> None:
    completer = _completer()
    manifest = {c.command for c in manifest_commands()}
    assert {"/incident", "/oncall"} <= manifest
    assert set(completer.vocabulary.slash_commands) >= manifest
    assert completer.candidates("/oncall ") == ["P0", "P1", "P2", "P3"]
    assert completer.candidates("/incident declare ") == ["P0", "P1", "P2", "P3"]
    assert "identified" in completer.candidates("/incident update INC-20261127-001 ")
    assert "eta" in completer.candidates("/incident update INC-20261127-001 identified ")
    assert completer.candidates("/incident assign INC-1 ")[:2] == [
        "INC-20261127-002",
        "INC-20261127-001",
    ]
    assert "tech-lead" in completer.candidates("/incident assign INC-1 ")
    assert "#incidents" in completer.candidates(":in #")
    assert completer.candidates("hello there") == []  # chat is not completed
    assert ":react" in completer.candidates(":")


def test_a_command_the_manifest_adds_completes_without_a_console_change(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.yml"
    manifest.write_text(
        "features:\n  slash_commands:\n"
        "    - {command: /incident, usage_hint: declare P1 title}\n"
        "    - {command: /runbook, usage_hint: '<service>', description: Open a runbook}\n"
    )
    help_text = HELP_TEXT + "\n• `/runbook <checkout|search>`: open the service's runbook"
    vocabulary = Vocabulary.of_bot(help_text, manifest_commands(manifest))
    completer = ConsoleCompleter(vocabulary)
    assert "/runbook" in completer.candidates("/r")
    assert completer.candidates("/runbook ") == ["checkout", "search"]
    assert manifest_commands(tmp_path / "missing.yml") == []


def test_long_lines_wrap_by_cell_width_with_a_hanging_indent() -> None:
    text = TerminalText(io.StringIO(), color=False, width=41)
    line = "  • /incident update [INC-ID] <status> <message> [eta <duration>]: post an update"
    assert [part.plain for part in text.fit(line)] == [
        "  • /incident update [INC-ID] <status>",
        "    <message> [eta <duration>]: post an",
        "    update",
    ]
    assert [part.plain for part in text.fit("short")] == ["short"]
    # Emoji take two columns; colour codes take none.
    wide = "\x1b[1m" + " ".join(["🟠 P1"] * 12) + "\x1b[0m"
    parts = text.fit(wide)
    assert len(parts) == 2 and all(part.cell_len <= 40 for part in parts)
    assert "\x1b" not in "".join(part.plain for part in parts)


def test_the_printed_text_keeps_its_colours_on_a_colour_terminal() -> None:
    out = io.StringIO()
    TerminalText(out, color=True, width=80).print(["\x1b[1mbold\x1b[0m plain"])
    assert out.getvalue() == "\x1b[1mbold\x1b[0m plain\n"
