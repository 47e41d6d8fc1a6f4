"""Waiting for something to happen, the one way the suite does it: poll a condition until
it holds, and fail naming what never came after a timeout (never a timed assertion: the
timeout only bounds a test that would otherwise hang)."""

from __future__ import annotations

import asyncio
import inspect
import io
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg


async def until(
    condition: Callable[[], bool | Awaitable[bool]],
    what: str = "the condition",
    timeout: float = 10.0,
) -> None:
    """Wait until `condition()` (plain or async) holds; fail naming `what` after `timeout`
    seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        held = condition()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def wait_for_output(
    out: io.StringIO,
    text: str,
    *,
    since: int = 0,
    task: asyncio.Task[Any] | None = None,
    timeout: float = 10.0,
) -> str:
    """The console's output after `since`, once it contains `text`; a console `task` that
    ended meanwhile raises its own failure."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while text not in out.getvalue()[since:]:
        if task is not None and task.done():
            task.result()
        assert loop.time() < deadline, f"{text!r} never shown; output:\n{out.getvalue()}"
        await asyncio.sleep(0.02)
    return out.getvalue()[since:]


def poll_sql(dsn: str, sql: str, params: tuple[Any, ...] = (), timeout: float = 20.0) -> None:
    """Block until `sql` returns a row on the PostgreSQL at `dsn` (run it in a thread)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if conn.execute(sql, params).fetchone():
                return
            time.sleep(0.05)
    raise AssertionError(f"never saw: {sql} {params}")
