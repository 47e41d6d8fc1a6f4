"""The console's terminal: lines in, text out.

- A person at a terminal types into prompt_toolkit: line editing, a history kept between
  sessions (Up, Ctrl-R), suggestions from it, and Tab completion of commands, channels and
  incident IDs. What the bot does meanwhile is printed above the prompt (`patch_stdout`).
- A pipe or a file is read by a thread (os.read, so a pipe, a file and a TTY all work) and
  the console echoes each line after its prompt; tests hand lines over with QueueLines.
- On a terminal, rich wraps the output to the window by cell width (emoji and CJK take two
  columns, colour codes none); continuation lines hang under their text. Pipes get the lines
  as they are.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol, TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.completion import Completer
from prompt_toolkit.formatted_text import ANSI
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from rich.console import Console as RichConsole
from rich.text import Text

from bot.console.render import Style

# Continuation lines of a wrapped line start this many columns right of its own indent.
HANG = 2


class LineSource(Protocol):
    """Where typed lines come from: None means end of input (Ctrl-D, a closed pipe).

    `draws_prompt` sources show the prompt themselves; for the others the console writes it
    (a TTY) or echoes it with the line (a pipe). `history=False` marks an answer to a
    question (a modal field, y/N), which is not a command worth recalling.
    """

    draws_prompt: bool

    async def readline(self, prompt: str = "", *, history: bool = True) -> str | None: ...


class PromptLines:
    """A person at a terminal, through prompt_toolkit. Ctrl-C raises KeyboardInterrupt."""

    draws_prompt = True

    def __init__(
        self, *, history_file: Path | None = None, completer: Completer | None = None
    ) -> None:
        history: History = InMemoryHistory()
        if history_file is not None:
            try:
                history_file.touch(exist_ok=True)
                history = FileHistory(str(history_file))
            except OSError:
                pass  # an unwritable data directory costs the history, nothing else
        self._commands: PromptSession[str] = PromptSession(
            history=history,
            completer=completer,
            complete_while_typing=False,  # Tab completes; typing is not interrupted
            auto_suggest=AutoSuggestFromHistory(),
        )
        self._questions: PromptSession[str] = PromptSession()

    async def readline(self, prompt: str = "", *, history: bool = True) -> str | None:
        session = self._commands if history else self._questions
        try:
            return await session.prompt_async(ANSI(prompt))
        except EOFError:
            return None


class StdinLines:
    """Lines from a file descriptor, read by a daemon thread and queued for asyncio.

    os.read (not sys.stdin) so that a thread still blocked in it at exit holds no lock the
    interpreter needs while shutting down; works the same on a TTY, a pipe and a file.
    """

    draws_prompt = False

    def __init__(self, fd: int = 0) -> None:
        self._fd = fd
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._pump, name="console-stdin", daemon=True)
        self._thread.start()

    def _put(self, line: str | None) -> bool:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, line)
        except RuntimeError:  # the loop is closed: the console has finished
            return False
        return True

    def _pump(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        pending = ""
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                pending += decoder.decode(b"", final=True)
                if pending and not self._put(pending):
                    return
                self._put(None)
                return
            pending += decoder.decode(chunk)
            while "\n" in pending:
                line, pending = pending.split("\n", 1)
                if not self._put(line.rstrip("\r")):
                    return

    async def readline(self, prompt: str = "", *, history: bool = True) -> str | None:
        return await self._queue.get()

    def close(self) -> None:
        """End the input now (the console was asked to leave)."""
        self._queue.put_nowait(None)


class QueueLines:
    """Lines handed over by a program (tests, scripted demos)."""

    draws_prompt = False

    def __init__(self, lines: Iterable[str] = ()) -> None:
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.feed(*lines)

    def feed(self, *lines: str) -> None:
        for line in lines:
            self._queue.put_nowait(line)

    def close(self) -> None:
        self._queue.put_nowait(None)

    async def readline(self, prompt: str = "", *, history: bool = True) -> str | None:
        return await self._queue.get()


class TerminalText:
    """Prints lines on a terminal through rich, wrapped to its width."""

    def __init__(self, out: TextIO, *, color: bool, width: int | None = None) -> None:
        self.console = RichConsole(
            file=out,
            width=width,
            force_terminal=True,
            color_system="standard" if color else None,
            highlight=False,
            markup=False,
            emoji=False,
        )

    def fit(self, line: str) -> list[Text]:
        """One line (ANSI colours allowed) as the lines it takes; long ones hang-indented."""
        text = Text.from_ansi(line)
        width = self.console.width - 1
        if text.cell_len <= width:
            return [text]
        plain = text.plain
        lead = len(plain) - len(plain.lstrip(" "))
        hang = min(lead + HANG, width // 2)
        first, *rest = text[lead:].wrap(self.console, max(10, width - hang))
        for part in (first, *rest):
            part.rstrip()  # the space a line was broken at
        return [Text(" " * lead) + first, *(Text(" " * hang) + part for part in rest)]

    def print(self, lines: Sequence[str]) -> None:
        for line in lines:
            for part in self.fit(line):
                # Already fitted: rich must neither wrap nor crop it again.
                self.console.print(part, soft_wrap=True)


def isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _speaks_utf8(stream: TextIO) -> bool:
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
    return encoding in ("utf8", "utf8sig")


def terminal_style(out: TextIO) -> Style:
    """Colours on a TTY unless NO_COLOR is set; emoji and box characters when UTF-8."""
    color = isatty(out) and not os.environ.get("NO_COLOR")
    return Style(color=color, unicode=_speaks_utf8(out))
