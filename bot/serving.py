"""How the HTTP server takes connections, bounded so that no client can starve it.

- A connection may sit idle (before its first request, or kept alive between requests) for
  `idle_seconds`. Once a request's first byte comes, its headers must all arrive within
  `header_seconds`, and its body within `body_seconds` of its headers.
- The request line and each header hold at most `max_header_bytes`, a request at most
  `max_headers` headers, a body at most `max_body_bytes`.
- At most `max_connections` connections are open at once, fewer when the open-files limit
  leaves less room. At the cap a new connection sheds the oldest one still sending its
  request (slow, stalled or idle), so probes and Slack's requests keep getting in; a request
  being handled is never shed. When even `accept()` runs out of files, the oldest such
  connection is shed to make room.

Refusals are one WARNING line each (and the log collapses repeats, bot.logs.RepeatFilter):
a client that hangs up mid-body or sends an oversized header is no server error.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import resource
import socket
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler, RequestPayloadError

from bot.errors import ConfigError

log = logging.getLogger(__name__)

# Files the process keeps for itself beside HTTP connections: the store's pool, Redis,
# Slack's and the probes' HTTP clients, the log.
FILES_RESERVED = 256
_MESSAGE_CHARS = 200

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LINGER_SECONDS = 1.0
BACKLOG = 1024  # connections the kernel holds for us while we make room
ACCEPT_BATCH = 32  # connections accepted a turn of the loop, well within FILES_RESERVED
ROOM_PAUSE = 0.05  # seconds: how long to stop accepting when there is no room


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


def raise_open_files_limit() -> int:
    """Raise this process's open-files limit to the most it may have; return the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-files limit above %d: %s", soft, exc)
    return soft


def connection_cap(max_connections: int, open_files: int) -> int:
    """How many connections fit beside the files the process keeps for itself."""
    room = open_files - FILES_RESERVED if open_files >= 2 * FILES_RESERVED else open_files // 2
    return max(1, min(max_connections, room))


def _one_line(exc: BaseException) -> str:
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


class _ServerLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server logger: a request it could not parse (an oversized header, a bad
    request line) or a client gone mid-answer is a WARNING line, not an ERROR traceback."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError | ConnectionError | RequestPayloadError):
            text = str(msg) % args if args else str(msg)
            text = text.replace("Error handling request", "refused a request", 1)
            self.logger.warning("%s: %s", text, _one_line(exc_info))
        else:
            self.logger.exception(msg, *args, exc_info=exc_info, **kwargs)


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
                    _one_line(exc),
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


class GuardedServer:
    """An aiohttp application served through a ConnectionGuard on one TCP port.

    The accept loop is ours, not asyncio's: it makes room (or waits) before accepting, takes
    a few connections a turn so the count never runs far past the cap, and meets "too many
    open files" with one warning, a shed connection and a short pause. (asyncio's own loop
    logs a traceback for every connection waiting, each time, and may not shed.)"""

    def __init__(self, app: web.Application, limits: RequestLimits, open_files: int) -> None:
        self.guard = ConnectionGuard(limits, connection_cap(limits.max_connections, open_files))
        # Outermost, so every route's body is read within the deadline.
        app.middlewares.insert(0, self.guard.middleware)
        self.runner = web.AppRunner(
            app,
            access_log=None,
            # aiohttp closes a connection that sends nothing this long after connecting or
            # after its last answer: longer than a load balancer's own idle timeout (60 s
            # for most), so it never sends a request on a connection we are closing.
            keepalive_timeout=limits.idle_seconds,
            max_line_size=limits.max_header_bytes,
            max_field_size=limits.max_header_bytes,
            max_headers=limits.max_headers,
            # After an early answer (408, 413) the rest of a body is read and dropped this
            # long, so the client sees the answer rather than a reset; then the line closes.
            lingering_time=LINGER_SECONDS,
            logger=_ServerLog(logging.getLogger("aiohttp.server"), {}),
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock: socket.socket | None = None
        self._factory: Callable[[], asyncio.Protocol] | None = None
        self._resume: asyncio.TimerHandle | None = None
        self._connecting: set[asyncio.Task[None]] = set()
        self.port: int | None = None
        self._host = ""

    def bind(self, host: str, port: int) -> None:
        """Take the address, not listening yet: called before any other start-up work, so a
        port taken (ConfigError) ends the process having started nothing (an outbox
        dispatcher started first delivered notifications before the exit)."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            # As socket.create_server: a port left in TIME_WAIT by the last run is ours.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((host, port))
        except OSError as exc:  # the port taken, or not ours to bind: a setting to change
            sock.close()
            raise _cannot_listen(host, port, exc) from exc
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._host = host

    async def start(self) -> None:
        """Listen on the address `bind` took, and serve."""
        assert self._sock is not None, "bind() first"
        await self.runner.setup()
        self._loop = asyncio.get_running_loop()
        self._factory = self.guard.protocol_factory(self.runner.server)  # type: ignore[arg-type]  # runner.server is set by setup() just above
        try:
            self._sock.listen(BACKLOG)
        except OSError as exc:  # bound by another socket meanwhile, which listened first
            raise _cannot_listen(self._host, self.port or 0, exc) from exc
        self._sock.setblocking(False)
        self._loop.add_reader(self._sock.fileno(), self._accept)

    def _accept(self) -> None:
        assert self._loop is not None and self._sock is not None
        for _ in range(ACCEPT_BATCH):
            if not self.guard.make_room():
                self._pause(ROOM_PAUSE)  # every connection is being answered: wait
                return
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                log.warning("could not accept a connection: %s", _one_line(exc))
                if exc.errno in (errno.EMFILE, errno.ENFILE):
                    self.guard.shed_oldest("out of open files")
                self._pause(ROOM_PAUSE)
                return
            conn.setblocking(False)
            task = self._loop.create_task(self._connect(conn))
            self._connecting.add(task)
            task.add_done_callback(self._connecting.discard)

    async def _connect(self, conn: socket.socket) -> None:
        assert self._loop is not None and self._factory is not None
        self.guard.accepting += 1
        try:
            await self._loop.connect_accepted_socket(self._factory, conn)
        except OSError as exc:
            conn.close()
            log.warning("dropped a connection as it opened: %s", _one_line(exc))
        finally:
            self.guard.accepting -= 1

    def _pause(self, seconds: float) -> None:
        assert self._loop is not None and self._sock is not None
        self._loop.remove_reader(self._sock.fileno())
        self._resume = self._loop.call_later(seconds, self._listen_again)

    def _listen_again(self) -> None:
        self._resume = None
        if self._loop is not None and self._sock is not None:
            self._loop.add_reader(self._sock.fileno(), self._accept)

    async def stop(self) -> None:
        if self._resume is not None:
            self._resume.cancel()
        if self._sock is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()  # no new connections; cleanup() closes the open ones
            self._sock = None
        for task in list(self._connecting):
            task.cancel()
        await self.runner.cleanup()


def _cannot_listen(host: str, port: int, exc: OSError) -> ConfigError:
    if exc.errno and exc.errno > 0:
        reason = os.strerror(exc.errno)
    else:  # a host that does not resolve: getaddrinfo's errno read "Unknown error -2"
        reason = str(exc.strerror or exc).split(" (while attempting")[0]
    return ConfigError(f"cannot listen on {host}:{port}: {reason} (--host, --port)")
