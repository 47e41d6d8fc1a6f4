"""A console (`chatops-bot console`, as `scripts/demo` runs it) driven by a test like a person:
lines typed in, what it prints waited for (tests/integration/test_console*.py)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from slack_bolt.async_app import AsyncApp

from bot.clock import Clock
from bot.console.app import Console, QueueLines
from bot.console.render import Style
from tests.waiting import until, wait_for_output


class Driver:
    """Types into a running console and waits for what it prints."""

    wait_seconds = 10.0  # wait_for's bound, unless given

    def __init__(
        self, tmp_path: Path, *, policy_path: Path | None = None, clock: Clock | None = None
    ) -> None:
        self.out = io.StringIO()
        self.lines = QueueLines()
        self.console = Console(
            lines=self.lines,
            out=self.out,
            database_url=f"sqlite:///{tmp_path}/console.db",
            policy_path=policy_path,
            style=Style(color=False, unicode=True),
            quiet=0.15,
            clock=clock,
        )
        self.task: asyncio.Task[int] | None = None

    @property
    def app(self) -> AsyncApp:
        assert self.console.bot is not None
        return self.console.bot.app

    async def start(self) -> None:
        await self.console.start()

    def run(self) -> None:
        self.task = asyncio.create_task(self.console.run())

    def type(self, *lines: str) -> int:
        """Queue lines; returns where the output stood, for `wait_for(..., since=)`."""
        mark = len(self.out.getvalue())
        self.lines.feed(*lines)
        return mark

    async def wait_for(self, text: str, *, since: int = 0, timeout: float | None = None) -> str:
        """The output after `since`, once it contains `text`."""
        return await wait_for_output(
            self.out, text, since=since, task=self.task, timeout=timeout or self.wait_seconds
        )

    async def wait_requests(self, count: int, timeout: float = 10.0) -> None:
        await until(lambda: self.console.requests_sent >= count, f"{count} requests sent", timeout)

    async def quit(self) -> int:
        self.lines.feed(":quit")
        assert self.task is not None
        return await asyncio.wait_for(self.task, timeout=20)


class Session(Driver):
    """One `scripts/demo` run: a console on a database file that outlives it; two in a row
    on one `tmp_path` are two sessions on the same store."""

    wait_seconds = 15.0

    async def __aenter__(self) -> Session:
        await self.start()
        self.run()
        await self.wait_for("Type a slash command")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        if not self.task.done():
            self.lines.close()
        await asyncio.wait_for(self.task, timeout=30)
