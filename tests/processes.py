"""The real bot as separate processes (`chatops-bot run`), and what tests run beside them:
the environment they start with, waiting on a condition, and a round-robin front that
spreads Slack's requests over them as a load balancer does."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from bot import outbox
from bot.console.workspace import SlackDouble
from bot.slack.requests import SlackRequestSender
from bot.store import create_store
from tests.harness import BOT_TOKEN, PACE_SCALE, SIGNING_SECRET

CHATOPS_BOT = Path(sys.executable).with_name("chatops-bot")


def bound_port(site: web.TCPSite) -> int:
    """The port an aiohttp site started on port 0 was given."""
    server = site._server
    assert server is not None and getattr(server, "sockets", None), "the site is not serving"
    return int(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]  # checked above


def bot_env(
    double: SlackDouble,
    database_url: str,
    policy_path: Path,
    *,
    redis_url: str | None = None,
    sweep: float = 1.0,
) -> dict[str, str]:
    """The environment of a bot process: this process's, minus any bot settings, plus ours."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "CHATOPS_", "DATABASE_URL", "REDIS_URL", "ESCALATION_"))
    }
    env |= {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": double.api_url,
        "SLACK_PACE_SCALE": str(PACE_SCALE),
        "DATABASE_URL": database_url,
        "CHATOPS_POLICY": str(policy_path),
        "ESCALATION_SWEEP_SECONDS": str(sweep),
    }
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


LISTENING = re.compile(r"listening on http://[^\s:]+:(\d+)")


def listening_port(log: str) -> int | None:
    """The port a bot started on port 0 says it bound, once its log says so."""
    match = LISTENING.search(log)
    return int(match[1]) if match else None


class BotProcess:
    """One `chatops-bot run` process, its log in a file. It binds port 0 and its log says
    which port it got: no free port picked beforehand and raced for. `url` and `sender`
    are there once `ready()` returned."""

    def __init__(
        self, name: str, env: dict[str, str], log_dir: Path, *, open_files: int | None = None
    ) -> None:
        """`open_files` caps the process's open files, soft and hard (`ulimit -n`)."""
        self.name = name
        self.port: int | None = None
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self._logged_before = self.log_path.stat().st_size  # a restart appends to the same log
        self.proc = subprocess.Popen(
            [str(CHATOPS_BOT), "run", "--host", "127.0.0.1", "--port", "0"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=None if open_files is None else _limit_open_files(open_files),
        )
        self._sender: SlackRequestSender | None = None

    @property
    def url(self) -> str:
        assert self.port is not None, f"{self.name}: ready() first"
        return f"http://127.0.0.1:{self.port}"

    @property
    def sender(self) -> SlackRequestSender:
        if self._sender is None:
            self._sender = SlackRequestSender(self.url + "/slack/events", SIGNING_SECRET)
        return self._sender

    async def ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, f"{self.name} exited:\n{self.log()}"
                if self.port is None:
                    with self.log_path.open("rb") as log:
                        log.seek(self._logged_before)
                        self.port = listening_port(log.read().decode(errors="replace"))
                    if self.port is None:
                        await asyncio.sleep(0.05)
                        continue
                try:
                    async with session.get(self.url + "/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"{self.name} never became ready:\n{self.log()}")

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    async def stop(self) -> None:
        if self._sender is not None:
            await self._sender.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                # Off the loop: the bot finishes its deliveries on SIGTERM, to the Slack double
                # this loop serves (a blocking wait froze it: the bot hung until SIGKILL, 10 s).
                await asyncio.to_thread(self.proc.wait, 10)
            except subprocess.TimeoutExpired:
                self.kill9()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def _limit_open_files(limit: int) -> Callable[[], None]:
    def limit_in_child() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return limit_in_child


class RoundRobinFront:
    """A load balancer in front of the bots: each request goes to the next one in turn,
    headers and body as sent (so Slack's signature still holds), the answer passed back."""

    def __init__(self, backends: list[str]) -> None:
        self._next = itertools.cycle(backends)
        self.served: list[str] = []  # which backend took each request, in order
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/slack/events", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._session = aiohttp.ClientSession()
        self.url = f"http://127.0.0.1:{bound_port(site)}/slack/events"

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        backend = next(self._next)
        self.served.append(backend)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        async with self._session.post(
            backend + "/slack/events", data=await request.read(), headers=headers
        ) as answer:
            body = await answer.read()
            return web.Response(status=answer.status, body=body, content_type=answer.content_type)

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()


# ----- what the bots did, read from the double and the database ----------------------------


def count(double: SlackDouble, *parts: str) -> int:
    return sum(
        1
        for call in double.calls_to("chat.postMessage")
        if call.ok and all(part in str(call.params.get("text", "")) for part in parts)
    )


async def outbox_empty(database_url: str) -> bool:
    store = create_store(database_url)
    await store.open()
    try:
        async with store.transaction() as tx:
            return await outbox.undone_count(tx) == 0
    finally:
        await store.close()


async def incident_ids(database_url: str) -> dict[str, str]:
    """Incident IDs by title."""
    store = create_store(database_url)
    await store.open()
    try:
        async with store.transaction() as tx:
            rows = await tx.fetchall("SELECT id, title FROM incidents")
        return {str(row["title"]): str(row["id"]) for row in rows}
    finally:
        await store.close()


async def fired_reminders(database_url: str) -> list[dict[str, object]]:
    store = create_store(database_url)
    await store.open()
    try:
        async with store.transaction() as tx:
            return await tx.fetchall(
                "SELECT incident_id, kind, level, status, claimed_by, due_at, fired_at"
                " FROM reminders ORDER BY incident_id, kind, level"
            )
    finally:
        await store.close()
