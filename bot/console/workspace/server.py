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
import json
import logging
import secrets
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from bot.console.workspace.checks import OpenApiChecker, check_message, check_view
from bot.console.workspace.documented import check_documented
from bot.console.workspace.limits import Outage, RateLimiter
from bot.console.workspace.state import ApiError, Channel, UploadedFile, WorkspaceState, as_flag
from bot.console.workspace.team import Team
from bot.slack.limits import SlackLimits

__all__ = ["Channel", "RecordedCall", "RecordedResponse", "SlackDouble", "UploadedFile"]

logger = logging.getLogger(__name__)

# Fields slack_sdk JSON-encodes into form bodies (e.g. `blocks=[...]` as a string).
_JSON_FIELDS = ("blocks", "attachments", "view", "files", "metadata")
_MESSAGE_METHODS = {"chat.postMessage", "chat.postEphemeral", "chat.update", "chat.scheduleMessage"}
_VIEW_METHODS = {"views.open", "views.update", "views.push", "views.publish"}
RESPONSE_URL_TTL_SECONDS = 30 * 60
RESPONSE_URL_MAX_POSTS = 5


@dataclass
class RecordedCall:
    """One Web API call as the double saw it, with the answer it gave."""

    method: str
    params: dict[str, Any]  # query + body merged; JSON-string fields decoded; no token
    time: float
    response: dict[str, Any] = field(default_factory=dict)
    http_status: int = 200
    reply_lost: bool = False  # done, but the connection closed before the answer (lose_reply)

    @property
    def ok(self) -> bool:
        """Whether Slack would have answered `ok: true`."""
        return self.http_status == 200 and bool(self.response.get("ok"))


@dataclass
class RecordedResponse:
    """One POST to a response_url."""

    url_id: str
    payload: dict[str, Any]
    time: float = 0.0
    http_status: int = 200


@dataclass
class _Injection:
    kind: str  # "fail" | "rate_limit" | "http_error" | "lose_reply"
    remaining: int
    error: str = ""
    retry_after: int = 1
    status: int = 500
    body: str | None = None
    content_type: str = "text/plain"
    channel: str | None = None  # only calls about this channel (ID or name); None: any


@dataclass
class _ResponseUrl:
    created: float
    channel: str | None
    message_ts: str | None
    user_id: str | None
    posts: int = 0


EventHook = Callable[["RecordedCall | RecordedResponse"], Awaitable[None]]


class SlackDouble:
    """Slack's Web API, response_url and Socket Mode, served by aiohttp on loopback."""

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
        self._injections: dict[str, deque[_Injection]] = defaultdict(deque)
        self.rate_limiter = RateLimiter(rate_limits) if rate_limits is not None else None
        self._outage: Outage | None = None
        self._response_urls: dict[str, _ResponseUrl] = {}
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

    def calls_to(self, method: str) -> list[RecordedCall]:
        """Recorded calls to one method, oldest first."""
        return [c for c in self.calls if c.method == method]

    async def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5.0,
    ) -> list[RecordedCall]:
        """Wait until `count` calls to `method` were recorded; returns all calls to it."""
        await self._wait_until(
            lambda: len(self.calls_to(method)) >= count,
            timeout,
            lambda: f"{count} call(s) to {method}; recorded: {[c.method for c in self.calls]}",
        )
        return self.calls_to(method)

    async def wait_for_response(
        self,
        count: int = 1,
        timeout: float = 5.0,
    ) -> list[RecordedResponse]:
        """Wait until `count` response_url posts were recorded; returns them all."""
        await self._wait_until(
            lambda: len(self.responses) >= count,
            timeout,
            lambda: f"{count} response_url post(s); got {len(self.responses)}",
        )
        return list(self.responses)

    def reset(self) -> None:
        """Forget recorded calls, responses, violations, acks and injections (not state)."""
        self.calls.clear()
        self.responses.clear()
        self.violations.clear()
        self.acks.clear()
        self._injections.clear()

    async def _wait_until(
        self, done: Callable[[], bool], within: float, describe: Callable[[], str]
    ) -> None:
        loop = asyncio.get_running_loop()
        if self._changed_loop is not loop:
            # An Event binds to the first loop that waits on it; a double may outlive a loop.
            self._changed, self._changed_loop = asyncio.Event(), loop
        deadline = loop.time() + within
        while not done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"SlackDouble: timed out after {within}s waiting for {describe()}"
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue

    def _notify(self) -> None:
        self._changed.set()

    async def _emit(self, item: RecordedCall | RecordedResponse) -> None:
        self._notify()
        if self.on_event is not None:
            try:
                await self.on_event(item)
            except Exception:  # a broken printer must not break the API
                logger.exception("SlackDouble on_event hook failed")

    # ----- failure injection ------------------------------------------------------------

    # Faults are scripted per method, optionally for one channel (`channel`: an ID or a
    # name, matched against the call's `channel` argument), and used up in the order given.

    def fail(
        self,
        method: str,
        error: str = "channel_not_found",
        times: int = 1,
        *,
        channel: str | None = None,
    ) -> None:
        """Answer the next `times` calls to `method` with `{"ok": false, "error": error}`."""
        self._injections[method].append(_Injection("fail", times, error=error, channel=channel))

    def rate_limit(
        self, method: str, retry_after: int = 1, times: int = 1, *, channel: str | None = None
    ) -> None:
        """Answer the next `times` calls with HTTP 429, `Retry-After`, error `ratelimited`."""
        self._injections[method].append(
            _Injection("rate_limit", times, retry_after=retry_after, channel=channel)
        )

    def http_error(
        self,
        method: str,
        status: int = 500,
        times: int = 1,
        body: str | None = None,
        *,
        content_type: str = "text/plain",
        channel: str | None = None,
    ) -> None:
        """Answer the next `times` calls with HTTP `status`: a JSON error body, or `body` as
        it is, sent as `content_type` (a proxy's text or HTML page, or broken JSON)."""
        self._injections[method].append(
            _Injection(
                "http_error",
                times,
                status=status,
                body=body,
                content_type=content_type,
                channel=channel,
            )
        )

    def lose_reply(self, method: str, times: int = 1, *, channel: str | None = None) -> None:
        """Carry out the next `times` calls to `method`, then close the connection instead
        of answering: the caller cannot tell whether the call happened (a reply lost to a
        network fault or a timeout)."""
        self._injections[method].append(_Injection("lose_reply", times, channel=channel))

    def outage(self, seconds: float, *, retry_after: int = 1) -> None:
        """For the next `seconds`, answer every Web API call with HTTP 429 (Retry-After) and
        HTTP 500 in turn: Slack down, then up again by itself."""
        self._outage = Outage(until=time.monotonic() + seconds, retry_after=retry_after)

    @property
    def rate_limited(self) -> list[RecordedCall]:
        """Calls answered 429, scripted or enforced."""
        return [c for c in self.calls if c.http_status == 429]

    def _take_injection(self, method: str, params: Mapping[str, Any]) -> _Injection | None:
        queue = self._injections.get(method)
        if not queue:
            return None
        injection = next((i for i in queue if self._concerns(i, params)), None)
        if injection is None:
            return None
        injection.remaining -= 1
        if injection.remaining <= 0:
            queue.remove(injection)
        return injection

    def _concerns(self, injection: _Injection, params: Mapping[str, Any]) -> bool:
        if injection.channel is None:
            return True
        ref = str(params.get("channel") or "")
        wanted = injection.channel.removeprefix("#")
        known = self.state.channels.get(ref)
        return ref == wanted or (known is not None and known.name == wanted)

    @staticmethod
    def _injected_answer(injection: _Injection) -> web.Response:
        if injection.kind == "rate_limit":
            return _rate_limited(injection.retry_after)
        if injection.kind == "http_error":
            if injection.body is not None:
                return web.Response(
                    status=injection.status,
                    body=injection.body.encode(),
                    content_type=injection.content_type,
                )
            return web.json_response(
                {"ok": False, "error": "internal_error"}, status=injection.status
            )
        return web.json_response({"ok": False, "error": injection.error})

    # ----- Web API ----------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _read_params(request)
        header_token = _bearer(request.headers.get("Authorization", ""))
        body_token = params.pop("token", None)
        call = RecordedCall(method=method, params=params, time=self._clock())
        response, lose = self._answer(method, params, header_token or body_token, header_token)
        call.http_status = response.status
        call.response = _recorded_body(response)
        call.reply_lost = lose
        self.calls.append(call)
        await self._emit(call)
        if lose and request.transport is not None:
            request.transport.abort()  # the work is done; the answer never arrives
        return response

    def _answer(
        self, method: str, params: dict[str, Any], token: str | None, header_token: str | None
    ) -> tuple[web.Response, bool]:
        """The answer to a call, and whether its reply is to be lost (`lose_reply`)."""
        injection = None
        response = self._respond(method, params, token, header_token)
        if isinstance(response, _Injection):
            injection, response = response, self._carry_out(method, params)
        return response, injection is not None

    def _respond(
        self, method: str, params: dict[str, Any], token: str | None, header_token: str | None
    ) -> web.Response | _Injection:
        auth_error = self._auth_error(method, token, header_token)
        if auth_error:
            return web.json_response({"ok": False, "error": auth_error})
        if self._openapi is not None:
            self.violations.extend(self._openapi.check(method, params))
        self.violations.extend(check_documented(method, params))  # newer than the spec
        problems = self._payload_problems(method, params)
        self.violations.extend(f"{method}: {p}" for p in problems)
        if self._outage is not None and self._outage.active():
            if self._outage.next_status() == 429:
                return _rate_limited(self._outage.retry_after)
            return web.json_response({"ok": False, "error": "internal_error"}, status=500)
        if self.rate_limiter is not None:
            wait = self.rate_limiter.retry_after(method, params)
            if wait is not None:
                return _rate_limited(wait)
        injection = self._take_injection(method, params)
        if injection is not None and injection.kind == "lose_reply":
            return injection
        if injection is not None:
            return self._injected_answer(injection)
        if problems:
            return web.json_response({"ok": False, "error": "invalid_blocks"})
        return self._carry_out(method, params)

    def _carry_out(self, method: str, params: dict[str, Any]) -> web.Response:
        try:
            if method == "apps.connections.open":
                return web.json_response(self._open_connection())
            return web.json_response(self.state.call(method, params))
        except ApiError as exc:
            return web.json_response(exc.body())

    def _auth_error(self, method: str, token: str | None, header_token: str | None) -> str | None:
        if method == "apps.connections.open":
            # Slack takes the app token from the Authorization header only.
            token, expected = header_token, self.app_token
        else:
            expected = self.bot_token
        if not token:
            return "not_authed"
        if token == expected:
            return None
        if token in (self.bot_token, self.app_token):
            return "not_allowed_token_type"
        return "invalid_auth"

    @staticmethod
    def _payload_problems(method: str, params: Mapping[str, Any]) -> list[str]:
        if method in _MESSAGE_METHODS:
            return check_message(params)
        if method in _VIEW_METHODS and "view" in params:
            return check_view(params["view"])
        return []

    async def _handle_upload(self, request: web.Request) -> web.Response:
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            part = next((v for v in form.values() if hasattr(v, "file")), None)
            content = part.file.read() if part is not None else b""  # type: ignore[union-attr]
        else:
            content = await request.read()
        if not self.state.receive_upload(request.match_info["file_id"], content):
            return web.Response(status=404, text="file_not_found")
        return web.Response(text=f"OK - {len(content)}")  # what files.slack.com answers

    # ----- response_url -----------------------------------------------------------------

    def new_response_url(
        self,
        *,
        channel: str | None = None,
        message_ts: str | None = None,
        user_id: str | None = None,
    ) -> str:
        """A response_url on the double; give channel/message_ts/user to apply its effects.

        `replace_original`/`delete_original` then edit the message at `message_ts`,
        `response_type: in_channel` posts to `channel`, anything else is ephemeral to `user_id`.
        """
        url_id = secrets.token_hex(12)
        self._response_urls[url_id] = _ResponseUrl(self._clock(), channel, message_ts, user_id)
        return f"{self.url}response/{url_id}"

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        url_id = request.match_info["url_id"]
        try:
            payload = await request.json()
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        recorded = RecordedResponse(url_id, payload, self._clock())
        status, text = self._apply_response(url_id, recorded.payload)
        recorded.http_status = status
        self.responses.append(recorded)
        await self._emit(recorded)
        return web.Response(status=status, text=text)

    def _apply_response(self, url_id: str, payload: dict[str, Any]) -> tuple[int, str]:
        entry = self._response_urls.get(url_id)
        if entry is None:
            return 404, "invalid_url"
        if self._clock() - entry.created > RESPONSE_URL_TTL_SECONDS:
            return 404, "expired_url"
        if entry.posts >= RESPONSE_URL_MAX_POSTS:
            return 404, "used_url"
        problems = check_message(payload)
        if problems:
            self.violations.extend(f"response_url: {p}" for p in problems)
            return 400, "invalid_blocks"
        if as_flag(payload.get("delete_original")):
            if entry.message_ts:
                self.state.delete_message(entry.channel, entry.message_ts)
        elif not payload.get("text") and not payload.get("blocks"):
            return 400, "no_text"
        elif as_flag(payload.get("replace_original")) and entry.message_ts:
            self.state.replace_message(entry.channel, entry.message_ts, payload)
        elif payload.get("response_type") == "in_channel" and entry.channel:
            target = self.state.find_channel(entry.channel)
            if target is not None:
                self.state.post_message(target, payload)
        else:
            self.state.add_ephemeral(entry.channel, entry.user_id, payload)
        entry.posts += 1
        return 200, "ok"

    # ----- Socket Mode ------------------------------------------------------------------

    def _open_connection(self) -> dict[str, Any]:
        ticket = str(len(self._tickets) + 1)
        self._tickets.add(ticket)
        host_port = self.url.split("//", 1)[1]
        return {"ok": True, "url": f"ws://{host_port}socket-mode/link?ticket={ticket}"}

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("ticket") not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        ws = web.WebSocketResponse(autoping=True)  # answers the client's ping-pong
        await ws.prepare(request)
        self.connection_count += 1
        self._sockets.append(ws)
        self._notify()
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._sockets),
                "debug_info": {
                    "host": "applink-sandbox",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self.state.app_id},
            }
        )
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                try:
                    frame = json.loads(message.data)
                except ValueError:
                    continue
                if isinstance(frame, dict) and "envelope_id" in frame:
                    self.acks[str(frame["envelope_id"])] = frame
                    self._notify()
        finally:
            self._sockets.remove(ws)
            self._notify()
        return ws

    def _open_sockets(self) -> list[web.WebSocketResponse]:
        return [ws for ws in self._sockets if not ws.closed]

    async def wait_connected(
        self,
        count: int = 1,
        timeout: float = 5.0,
    ) -> None:
        """Wait until `count` Socket Mode connections have been accepted (ever) and one is open."""
        await self._wait_until(
            lambda: self.connection_count >= count and bool(self._open_sockets()),
            timeout,
            lambda: f"{count} Socket Mode connection(s); accepted {self.connection_count}",
        )

    async def send_envelope(
        self,
        envelope_type: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool = False,
    ) -> str:
        """Send an envelope ("slash_commands", "interactive", "events_api") to the client."""
        await self._wait_until(
            lambda: bool(self._open_sockets()), 5.0, lambda: "a Socket Mode client"
        )
        envelope_id = str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if envelope_type == "events_api":
            envelope.update(retry_attempt=0, retry_reason="")
        await self._open_sockets()[-1].send_json(envelope)
        return envelope_id

    async def wait_ack(
        self,
        envelope_id: str,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """The client's ack frame for an envelope: `{"envelope_id": ..., "payload"?: {...}}`."""
        await self._wait_until(
            lambda: envelope_id in self.acks, timeout, lambda: f"the ack of {envelope_id}"
        )
        return self.acks[envelope_id]

    async def disconnect_clients(
        self, reason: str = "refresh_requested", *, grace_seconds: float = 2.0
    ) -> None:
        """Tell clients to reconnect (Slack's `disconnect` frame), then close their sockets.

        Like Slack, the old socket stays open for a grace period so a well-behaved client
        (slack_sdk's) can connect anew first; whatever is still open afterwards is closed.
        """
        doomed = self._open_sockets()
        for ws in doomed:
            await ws.send_json(
                {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-sandbox"}}
            )
        try:
            await self._wait_until(
                lambda: all(ws.closed for ws in doomed), grace_seconds, lambda: "clients to leave"
            )
        except TimeoutError:
            pass
        for ws in doomed:
            if not ws.closed:
                await ws.close(code=WSCloseCode.GOING_AWAY, message=reason.encode())


def _rate_limited(retry_after: int) -> web.Response:
    return web.json_response(
        {"ok": False, "error": "ratelimited"},
        status=429,
        headers={"Retry-After": str(retry_after)},
    )


def _recorded_body(response: web.Response) -> dict[str, Any]:
    """The JSON object answered, or {} for anything else (a scripted text or broken body)."""
    if not response.content_type.endswith("json") or response.text is None:
        return {}
    try:
        body = json.loads(response.text)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _bearer(header: str) -> str | None:
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Query string + form or JSON body, as Slack merges them; JSON-string fields decoded."""
    params: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                body = None
            if isinstance(body, dict):
                params.update(body)
        else:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
    for key in _JSON_FIELDS:
        value = params.get(key)
        if isinstance(value, str) and value[:1] in ("[", "{"):
            try:
                params[key] = json.loads(value)
            except ValueError:
                pass  # left as a string: the payload checks report it
    return params
