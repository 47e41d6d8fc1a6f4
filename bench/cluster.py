"""What the benchmarks share when they run the bot as a deployment does: `chatops-bot run`
processes behind a round-robin front, on a throwaway PostgreSQL and Redis (tests/servers.py,
fsync off) unless URLs are given, with the Slack double in the benchmark's own process
enforcing Slack's limits at the same pace scale the bots keep.

Also the bare Bolt app that is every ack benchmark's floor, servable in this process or, run
as `python bench/cluster.py bare --port N --api-url URL`, as a process of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.console.workspace import RecordedCall, RecordedResponse, SlackDouble  # noqa: E402

SIGNING_SECRET = "bench-signing-secret-0123456789ab"
BOT_TOKEN = "xoxb-bench"
DEFAULT_POLICY = ROOT / "bot" / "defaults" / "policy.yml"
# Slack's clock this many times faster, for the double and the bots alike: a benchmark at
# scale 1 would measure Slack's one message a second per channel, not the bot.
PACE_SCALE = 100.0


@contextlib.contextmanager
def servers(
    database_url: str | None, redis: bool, redis_url: str | None = None
) -> Iterator[tuple[Callable[[str], str], str | None, int | None]]:
    """(a database factory by name, a Redis URL or None, the PostgreSQL server's pid or None).

    Throwaway servers unless URLs are given; a given `database_url` serves every name."""
    with contextlib.ExitStack() as stack:
        from tests.servers import PostgresServer, RedisServer

        if database_url:
            database: Callable[[str], str] = lambda name: database_url  # noqa: E731
            pid = None
        else:
            pg = stack.enter_context(PostgresServer(max_connections=200))
            assert pg._proc is not None
            database, pid = pg.create_database, pg._proc.pid
        if redis and not redis_url:
            redis_url = stack.enter_context(RedisServer()).url
        yield database, (redis_url if redis else None), pid


def start_bare_app(api_url: str) -> web.Application:
    """A Bolt app that only acks `/incident` and `/diagnose`, served as bot.server serves
    the bot (the same adapter, signing secret and Web API base URL): Bolt, aiohttp and the
    signature check with nothing of ours."""
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    app = AsyncApp(
        client=AsyncWebClient(token=BOT_TOKEN, base_url=api_url, timeout=10),
        signing_secret=SIGNING_SECRET,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )

    async def only_ack(ack: Callable[[], Awaitable[None]]) -> None:
        await ack()

    app.command("/incident")(only_ack)
    app.command("/diagnose")(only_ack)

    async def slack_events(request: web.Request) -> web.Response:
        bolt_request = await to_bolt_request(request)
        bolt_response = await app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    web_app = web.Application()
    web_app.router.add_post("/slack/events", slack_events)
    web_app.router.add_get("/healthz", healthz)
    return web_app


async def serve(web_app: web.Application, port: int = 0) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, runner.addresses[0][1]


@dataclass
class Cluster:
    """Processes behind a round-robin front: `url` is where Slack's requests go."""

    url: str
    pids: list[int]
    backends: list[str]  # each process's own base URL (for what the front does not forward)


async def start_in_process(
    stack: contextlib.AsyncExitStack,
    double: SlackDouble,
    database_url: str,
    *,
    pace_scale: float = PACE_SCALE,
    redis_url: str | None = None,
    policy: Any = None,
    **settings: Any,
) -> str:
    """The real bot in this process (`create_bot`, served on a free loopback port, stopped
    with `stack`), its Web API the double's; returns its Events URL."""
    from bot.runtime import create_bot
    from bot.settings import Settings

    bot = create_bot(
        Settings(
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=double.api_url,
            SLACK_APP_TOKEN=None,
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            SLACK_PACE_SCALE=pace_scale,
            **settings,
        ),
        policy=policy,
    )
    await bot.start("127.0.0.1", 0)
    stack.push_async_callback(bot.stop)
    return f"http://127.0.0.1:{bot.port}/slack/events"


def bot_env(
    double: SlackDouble,
    database_url: str,
    redis_url: str | None,
    pace_scale: float,
    policy: Path = DEFAULT_POLICY,
) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "CHATOPS_", "DATABASE_", "REDIS_URL", "ESCALATION_"))
    }
    env |= {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": double.api_url,
        "SLACK_PACE_SCALE": str(pace_scale),
        "DATABASE_URL": database_url,
        "CHATOPS_POLICY": str(policy),
    }
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


@contextlib.asynccontextmanager
async def cluster(
    kind: str,
    replicas: int,
    double: SlackDouble,
    *,
    database_url: str = "",
    redis_url: str | None = None,
    pace_scale: float = PACE_SCALE,
    preload: Sequence[str] = (),
    policy: Path = DEFAULT_POLICY,
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[Cluster]:
    """`replicas` processes of `kind` ("bot": `chatops-bot run`; "bare": the bare Bolt app)
    behind a round-robin front in this process. `preload`: modules a bot process imports
    before it starts (what it once imported eagerly, as a baseline). `policy` and
    `extra_env` (an alerts token...) are the bots' policy file and added environment."""
    from tests.processes import CHATOPS_BOT, RoundRobinFront

    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as logs:
        started: list[tuple[subprocess.Popen[bytes], Path]] = []
        procs: list[tuple[subprocess.Popen[bytes], str, Path]] = []
        env = bot_env(double, database_url, redis_url, pace_scale, policy) | (extra_env or {})
        try:
            for n in range(replicas):
                # Port 0: each process says in its log which port it was given.
                run = ["run", "--host", "127.0.0.1", "--port", "0"]
                if kind == "bot" and preload:
                    imports = "".join(f"import {module}; " for module in preload)
                    code = f"{imports}import sys; from bot.cli import main; sys.exit(main())"
                    argv = [sys.executable, "-c", code, *run]
                elif kind == "bot" and os.environ.get("BENCH_CPROFILE"):
                    # A CPU profile of each bot process, written when it stops (SIGTERM).
                    prof = f"{os.environ['BENCH_CPROFILE']}-{n}.prof"
                    argv = [sys.executable, "-m", "cProfile", "-o", prof, str(CHATOPS_BOT), *run]
                elif kind == "bot":
                    argv = [str(CHATOPS_BOT), *run]
                else:
                    argv = [sys.executable, __file__, "bare", "--port", "0"]
                    argv += ["--api-url", double.api_url]
                log = Path(logs) / f"{kind}-{n}.log"
                with log.open("ab") as out:
                    # Started once, before measuring: a blocking Popen costs nothing measured.
                    proc = subprocess.Popen(  # noqa: ASYNC220
                        argv, env=env, stdout=out, stderr=subprocess.STDOUT
                    )
                started.append((proc, log))
            for proc, log in started:
                url = f"http://127.0.0.1:{await _port(proc, log)}"
                procs.append((proc, url, log))
                await _ready(proc, url, log)
            front = RoundRobinFront([url for _, url, _ in procs])
            await front.start()
            try:
                yield Cluster(
                    front.url, [proc.pid for proc, _, _ in procs], [url for _, url, _ in procs]
                )
            finally:
                await front.stop()
        finally:
            for proc, _ in started:
                if proc.poll() is None:
                    proc.terminate()
            for proc, _ in started:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


async def _port(proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> int:
    """The port a process started on port 0 names in its log."""
    from tests.processes import listening_port

    async with asyncio.timeout(timeout):
        while True:
            text = log.read_text(errors="replace")  # noqa: ASYNC240 (a small file, polled)
            if (port := listening_port(text)) is not None:
                return port
            if proc.poll() is not None:
                raise RuntimeError(f"{log.name} exited:\n{text[-3000:]}")
            await asyncio.sleep(0.05)


async def _ready(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 60) -> None:
    async with aiohttp.ClientSession() as session, asyncio.timeout(timeout):
        while True:
            if proc.poll() is not None:
                text = log.read_text(errors="replace")  # noqa: ASYNC240 (failing anyway)
                raise RuntimeError(f"{url} exited:\n{text[-3000:]}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url + "/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)


async def _serve_bare(port: int, api_url: str) -> None:
    runner, bound = await serve(start_bare_app(api_url), port)
    print(f"listening on http://127.0.0.1:{bound}", flush=True)  # as the bot logs it
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="serve the bare Bolt app (a benchmark floor)")
    parser.add_argument("what", choices=["bare"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-url", required=True)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_bare(args.port, args.api_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())


class AnnouncementCounter:
    """Counts announcements as the double records them (the double's on_event hook)."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.posted = 0
        self._changed = asyncio.Event()

    async def __call__(self, item: RecordedCall | RecordedResponse) -> None:
        if (
            isinstance(item, RecordedCall)
            and item.method == "chat.postMessage"
            and item.ok
            and item.params.get("channel") == self.channel
        ):
            self.posted += 1
            self._changed.set()

    async def wait_for(self, count: int, within: float) -> None:
        """Until `count` announcements have been posted in total."""
        async with asyncio.timeout(within):
            while self.posted < count:
                self._changed.clear()
                await self._changed.wait()
