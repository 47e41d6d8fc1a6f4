"""Running the console at a terminal: stdin/stdout (prompt_toolkit when a person sits at
one), Ctrl-C, and the bot's logs (to the console's file; errors shown in the conversation)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from bot.console.app import Console
from bot.console.config import console_config
from bot.console.terminal import PromptLines, QueueLines, StdinLines, isatty, terminal_style

__all__ = ["run_console"]


class _ConsoleLogHandler(logging.Handler):
    """Errors from the bot shown in the conversation, one line each (details in the file)."""

    def __init__(self, console: Console) -> None:
        super().__init__(level=logging.ERROR)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            where = f" (details in {self.console.log_file})" if self.console.log_file else ""
            message = record.getMessage().split("\n", 1)[0]
            self.console.screen.error(f"! bot error: {message}{where}")
        except Exception:
            self.handleError(record)


def _configure_logging(console: Console) -> None:
    """The bot logs to the console's file; only errors reach the terminal."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.INFO)
    if console.log_file is not None:
        try:
            handler = logging.FileHandler(console.log_file, encoding="utf-8")
        except OSError:
            console.log_file = None
        else:
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
            )
            root.addHandler(handler)
    root.addHandler(_ConsoleLogHandler(console))


async def run_console(*, fresh: bool = False) -> int:
    """`chatops-bot console`: converse on stdin/stdout until :quit or end of input."""
    from prompt_toolkit.patch_stdout import patch_stdout

    config = console_config(fresh=fresh)
    # prompt_toolkit when a person sits at a terminal (both ends); plain lines otherwise.
    at_terminal = isatty(sys.stdin) and isatty(sys.stdout)
    console = Console(
        lines=QueueLines(),  # replaced below, once the completer exists
        out=sys.stdout,
        database_url=config.database_url,
        policy_path=config.policy_path,
        style=terminal_style(sys.stdout),
        interactive=isatty(sys.stdin),
        log_file=config.log_file,
    )
    if at_terminal:
        console.lines = PromptLines(history_file=config.history_file, completer=console.completer)
    else:
        console.lines = StdinLines(sys.stdin.fileno())
    _configure_logging(console)
    loop = asyncio.get_running_loop()
    handled = False
    if console.interactive:
        # Outside prompt_toolkit's prompt (while the bot works) Ctrl-C is a signal.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGINT, console.interrupt)
            handled = True
    try:
        if not at_terminal:
            return await console.run()
        # Whatever the bot prints while a person types appears above their prompt.
        with patch_stdout(raw=True):
            console.screen.out = sys.stdout
            return await console.run()
    finally:
        if handled:
            loop.remove_signal_handler(signal.SIGINT)
