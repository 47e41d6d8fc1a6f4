"""A faithful Slack test double: Web API, response_url, file uploads and Socket Mode on loopback.

The bot talks to it through the real slack_sdk / slack_bolt clients (the Web API base URL is
a setting), so tests exercise the same HTTP, JSON and WebSocket code paths as production.
Every Block Kit payload is validated with slack_sdk's models and Slack's limits; problems
answer `invalid_blocks` and are collected in `SlackDouble.violations`.

    async with SlackDouble() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        await client.chat_postMessage(channel="C0SBX000001", text="hi")
        assert slack.violations == []

Workspace semantics live in `state`, payload checks in `checks`.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiohttp import WSCloseCode, web

from bot.console.workspace.checks import OpenApiChecker
from bot.console.workspace.faults import Injection
from bot.console.workspace.limits import Outage, RateLimiter
from bot.console.workspace.recording import EventHook, RecordedCall, RecordedResponse
from bot.console.workspace.response_urls import ResponseUrl, ResponseUrls
from bot.console.workspace.state import Channel, UploadedFile, WorkspaceState
from bot.console.workspace.team import Team
from bot.console.workspace.web_api import WebApi
from bot.slack.limits import SlackLimits

__all__ = ["Channel", "RecordedCall", "RecordedResponse", "SlackDouble", "UploadedFile"]


class SlackDouble(WebApi, ResponseUrls):
    """Slack's Web API, response_url and Socket Mode, served by aiohttp on loopback.

    Its rooms: `web_api` (the Web API and upload URLs over HTTP), `response_urls`,
    `socket_mode`, `faults` (scripted failures), `recording` (what it saw, and waiting for
    it); the workspace itself is `state`.
    """

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test",
        app_token: str = "xapp-test",
        openapi_spec: Mapping[str, Any] | None = None,
        users: Mapping[str, Mapping[str, Any]] | None = None,
        usergroups: Mapping[str, Iterable[str]] | None = None,
        channels_exist_by_default: bool = True,
        chat_write_public: bool = True,
        team_id: str = "T0TEST",
        bot_user_id: str = "U0TESTBOT",
        bot_id: str = "B0TESTBOT1",
        app_id: str = "A0TEST",
        trigger_id_ttl: float | None = 3.0,
        clock: Callable[[], float] = time.time,
        on_event: EventHook | None = None,
        rate_limits: SlackLimits | None = None,
    ) -> None:
        """Create the double (call `start()` to serve).

        `users=None` accepts any well-formed user ID; a dict makes the directory strict.
        `channels_exist_by_default` lets any "C..." ID exist (config channels, bot a member).
        `chat_write_public` mirrors Slack's scope: post to public channels without joining.
        `trigger_id_ttl` expires trigger_ids minted by `bot.slack.requests` (None: never).
        `rate_limits` enforces Slack's rate limits (429 with Retry-After); None: unlimited.
        """
        self.bot_token = bot_token
        self.app_token = app_token
        self.on_event = on_event
        self._clock = clock
        self._openapi = OpenApiChecker(openapi_spec) if openapi_spec is not None else None
        team = Team(
            team_id=team_id, bot_user_id=bot_user_id, bot_id=bot_id, app_id=app_id, clock=clock
        )
        self.state = WorkspaceState(
            team=team,
            users=users,
            usergroups=usergroups,
            channels_exist_by_default=channels_exist_by_default,
            chat_write_public=chat_write_public,
            trigger_id_ttl=trigger_id_ttl,
            wall_clock=time.time,
        )
        self.calls: list[RecordedCall] = []
        self.responses: list[RecordedResponse] = []
        self.violations: list[str] = []
        self.acks: dict[str, dict[str, Any]] = {}  # envelope_id -> ack frame
        self.connection_count = 0
        self._injections: dict[str, deque[Injection]] = defaultdict(deque)
        self.rate_limiter = RateLimiter(rate_limits) if rate_limits is not None else None
        self._outage: Outage | None = None
        self._response_urls: dict[str, ResponseUrl] = {}
        self._tickets: set[str] = set()
        self._sockets: list[web.WebSocketResponse] = []
        self._changed = asyncio.Event()
        self._changed_loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._base = ""
        # Declare a channel that exists before the test (None members: unknown roster).
        self.add_channel = self.state.add_channel

    # ----- lifecycle --------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on host:port (0 = a free port)."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/v1/{file_id}", self._handle_upload)
        app.router.add_post("/response/{url_id}", self._handle_response_url)
        app.router.add_get("/socket-mode/link", self._handle_socket)
        # No access log: the console prints what matters through `on_event`.
        self._runner = web.AppRunner(
            app, shutdown_timeout=1.0, handle_signals=False, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self._base = f"http://{bound_host}:{bound_port}/"
        self.state.uploads.files_base_url = f"{self._base}upload/v1/"

    async def stop(self) -> None:
        """Close Socket Mode connections and stop serving."""
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackDouble:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        """True between `start()` and `stop()`."""
        return self._runner is not None

    @property
    def url(self) -> str:
        """Root URL, e.g. "http://127.0.0.1:40123/"."""
        if not self._base:
            raise RuntimeError("SlackDouble is not started")
        return self._base

    @property
    def api_url(self) -> str:
        """Web API base URL for `AsyncWebClient(base_url=...)`, ending in "/api/"."""
        return f"{self.url}api/"

    # ----- seeding and reading state ----------------------------------------------------

    def add_user(self, user_id: str, **fields: Any) -> None:
        """Seed a user for users.info (fields like name, real_name, profile={...})."""
        self.state.users[user_id] = dict(fields)

    def add_usergroup(self, group_id: str, user_ids: Iterable[str]) -> None:
        """Seed a user group for usergroups.users.list."""
        self.state.usergroups[group_id] = list(user_ids)

    def channel(self, channel_id: str) -> Channel | None:
        """A known channel by ID."""
        return self.state.channels.get(channel_id)

    def channel_by_name(self, name: str) -> Channel | None:
        """A known (non-DM) channel by name, with or without "#"."""
        name = name.removeprefix("#")
        return next(
            (c for c in self.state.channels.values() if c.name == name and not c.is_im), None
        )

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Messages in a channel (ID or name) as they are now, oldest first, replies included."""
        found = self.channel(channel) or self.channel_by_name(channel)
        return copy.deepcopy(found.messages) if found else []

    def pins(self, channel: str) -> list[dict[str, Any]]:
        """Pinned messages of a channel, in pin order."""
        found = self.channel(channel) or self.channel_by_name(channel)
        if found is None:
            return []
        by_ts = {m["ts"]: m for m in found.messages}
        return [copy.deepcopy(by_ts[ts]) for ts in found.pinned if ts in by_ts]

    def topic(self, channel: str) -> str:
        """Current topic of a channel ("" when unset or unknown)."""
        found = self.channel(channel) or self.channel_by_name(channel)
        return str(found.topic.get("value", "")) if found else ""

    def members(self, channel: str) -> list[str]:
        """Member user IDs of a channel, the bot included."""
        found = self.channel(channel) or self.channel_by_name(channel)
        return list(found.members) if found else []

    @property
    def ephemerals(self) -> list[dict[str, Any]]:
        """Ephemeral messages: dicts with channel, user, text, blocks, thread_ts, message_ts."""
        return self.state.ephemerals

    @property
    def views(self) -> dict[str, dict[str, Any]]:
        """Views by ID, as last opened/updated/published."""
        return self.state.views

    def home_view(self, user_id: str) -> dict[str, Any] | None:
        """The App Home view last published for `user_id` (views.publish), if any."""
        view_id = self.state.surfaces.home_view_id(user_id)
        return copy.deepcopy(self.views[view_id]) if view_id in self.views else None

    @property
    def files(self) -> dict[str, UploadedFile]:
        """Files from the v2 upload flow by ID; `.content` holds the uploaded bytes."""
        return self.state.files

    # ----- recording --------------------------------------------------------------------

    def reset(self) -> None:
        """Forget recorded calls, responses, violations, acks and injections (not state)."""
        self.calls.clear()
        self.responses.clear()
        self.violations.clear()
        self.acks.clear()
        self._injections.clear()

    # ----- failure injection ------------------------------------------------------------

    # Faults are scripted per method, optionally for one channel (`channel`: an ID or a
    # name, matched against the call's `channel` argument), and used up in the order given.

    # ----- Web API ----------------------------------------------------------------------

    # ----- response_url -----------------------------------------------------------------

    # ----- Socket Mode ------------------------------------------------------------------
