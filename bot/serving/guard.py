"""The guard every HTTP connection passes: counted against the cap, the oldest stalled one
shed to make room, its headers and body read within their deadlines and sizes (the rules:
bot.serving's docstring)."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler, RequestPayloadError

# The server's one logger, as before the guard had a module of its own: its refusals are
# "bot.serving" lines (collapsed by bot.logs.RepeatFilter like any other).
log = logging.getLogger("bot.serving")

_MESSAGE_CHARS = 200

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class RequestLimits:
    """What one client may take of the server (settings HTTP_*)."""

    max_connections: int = 1000
    idle_seconds: float = 75.0
    header_seconds: float = 10.0
    body_seconds: float = 10.0
    max_header_bytes: int = 8190
    max_headers: int = 64
    max_body_bytes: int = 1024 * 1024


def one_line(exc: BaseException) -> str:
    """The exception as one short line, without the bytes it quotes (a header could hold a
    token)."""
    text = exc.message if isinstance(exc, HttpProcessingError) else str(exc)
    text = " ".join(str(text).split()).split(" b'")[0].split(' b"')[0].rstrip(":")
    return text[:_MESSAGE_CHARS] or type(exc).__name__


class _Connection:
    """One accepted connection: the protocol aiohttp serves it with, and what it is doing."""

    __slots__ = ("busy", "deadline", "handler", "in_request", "shed", "transport")

    def __init__(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        self.handler = handler
        self.transport = transport
        self.in_request = False  # its request's headers are in (the body may be on its way)
        self.busy = False  # its request is being handled (headers and body in)
        self.shed = False  # closed by us to make room
        self.deadline: asyncio.TimerHandle | None = None  # for the headers being sent


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, told to the guard when it opens, receives and
    closes."""

    def __init__(self, guard: ConnectionGuard, handler: RequestHandler) -> None:
        self._guard = guard
        self._handler = handler

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport: asyncio's, or uvloop's (which does not subclass asyncio's).
        self._guard.admit(_Connection(self._handler, cast(asyncio.Transport, transport)))
        self._handler.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._guard.release(self._handler)
        self._handler.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._guard.received(self._handler)
        self._handler.data_received(data)

    def eof_received(self) -> bool | None:
        self._handler.eof_received()
        return None  # aiohttp's handler keeps nothing half-open: the transport closes

    def pause_writing(self) -> None:
        self._handler.pause_writing()

    def resume_writing(self) -> None:
        self._handler.resume_writing()


class ConnectionGuard:
    """Counts connections, sheds the oldest stalled one at the cap, bounds body reads."""

    def __init__(self, limits: RequestLimits, cap: int) -> None:
        self.limits = limits
        self.cap = cap
        self.shed_count = 0
        self.reading_bodies = 0  # requests whose body is on its way
        self.accepting = 0  # accepted, not yet handed to aiohttp
        # Oldest first: a connection moves to the end when it starts waiting afresh.
        self._open: OrderedDict[RequestHandler, _Connection] = OrderedDict()

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def protocol_factory(self, server: web.Server) -> Callable[[], asyncio.Protocol]:
        return lambda: _Guarded(self, server())

    def make_room(self) -> bool:
        """Room for one more connection, shedding a stalled one at the cap; False if every
        connection is being answered."""
        if len(self._open) + self.accepting < self.cap:
            return True
        return self.shed_oldest("the connection cap")

    def admit(self, connection: _Connection) -> None:
        self._open[connection.handler] = connection

    def release(self, handler: RequestHandler) -> None:
        connection = self._open.pop(handler, None)
        if connection is not None and connection.deadline is not None:
            connection.deadline.cancel()

    def received(self, handler: RequestHandler) -> None:
        """Bytes came: the first of a request starts the clock for its headers."""
        connection = self._open.get(handler)
        if connection is not None and not connection.in_request and connection.deadline is None:
            loop = asyncio.get_running_loop()
            connection.deadline = loop.call_later(
                self.limits.header_seconds, self._headers_late, connection
            )

    def _headers_late(self, connection: _Connection) -> None:
        connection.deadline = None
        if connection.in_request or connection.handler not in self._open:
            return
        log.warning(
            "closed a connection: its request headers did not arrive within %g s",
            self.limits.header_seconds,
        )
        connection.transport.abort()

    def shed_oldest(self, reason: str) -> bool:
        """Close the oldest connection not being handled; False if every one is."""
        for connection in self._open.values():
            if not connection.busy:
                connection.shed = True
                self._open.pop(connection.handler)
                connection.transport.abort()
                self.shed_count += 1
                log.warning("shed the oldest stalled connection to make room (%s)", reason)
                return True
        return False

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Read the body within the deadline and size, then mark the connection busy."""
        connection = self._open.get(request.protocol)
        if connection is not None:
            connection.in_request = True  # the headers are in: their clock stops
            if connection.deadline is not None:
                connection.deadline.cancel()
                connection.deadline = None
        try:
            return await self._answer(request, connection, handler)
        finally:
            if connection is not None:
                connection.in_request = connection.busy = False
                if connection.handler in self._open:
                    self._open.move_to_end(connection.handler)

    async def _answer(
        self, request: web.Request, connection: _Connection | None, handler: Handler
    ) -> web.StreamResponse:
        if request.body_exists:
            read = await self._read_body(request, connection)
            if isinstance(read, web.StreamResponse):
                return read
            request = read
        if connection is not None:
            connection.busy = True
        return await handler(request)

    async def _read_body(
        self, request: web.Request, connection: _Connection | None
    ) -> web.Request | web.StreamResponse:
        limits = self.limits
        length = request.content_length
        if length is not None and length > limits.max_body_bytes:
            log.warning("refused a %d-byte body to %s (the limit)", length, _path(request))
            return _closing(413, f"the body is over {limits.max_body_bytes} bytes")
        request = request.clone(client_max_size=limits.max_body_bytes)
        self.reading_bodies += 1
        try:
            async with asyncio.timeout(limits.body_seconds):
                await request.read()
        except TimeoutError:
            log.warning(
                "closed a request to %s: its body did not arrive within %g s",
                _path(request),
                limits.body_seconds,
            )
            return _closing(408, "the body did not arrive in time")
        except web.HTTPRequestEntityTooLarge:
            log.warning("refused a body over %d bytes to %s", limits.max_body_bytes, _path(request))
            return _closing(413, f"the body is over {limits.max_body_bytes} bytes")
        except (ConnectionError, RequestPayloadError, HttpProcessingError) as exc:
            if connection is None or not connection.shed:
                log.warning(
                    "a client hung up before its request to %s was sent: %s",
                    _path(request),
                    one_line(exc),
                )
            return _closing(400, "the body was cut short")
        finally:
            self.reading_bodies -= 1
        return request


def _path(request: web.Request) -> str:
    """The path as sent (percent-encoded, so no control characters), clipped for the log."""
    return request.rel_url.raw_path[:_MESSAGE_CHARS]


def _closing(status: int, message: str) -> web.Response:
    response = web.json_response({"error": message}, status=status)
    response.force_close()
    return response
