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
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from bot.errors import ConfigError
from bot.serving.guard import ConnectionGuard, RequestLimits, one_line

log = logging.getLogger(__name__)

__all__ = [
    "ConnectionGuard",
    "GuardedServer",
    "RequestLimits",
    "connection_cap",
    "raise_open_files_limit",
]

# Files the process keeps for itself beside HTTP connections: the store's pool, Redis,
# Slack's and the probes' HTTP clients, the log.
FILES_RESERVED = 256

LINGER_SECONDS = 1.0
BACKLOG = 1024  # connections the kernel holds for us while we make room
ACCEPT_BATCH = 32  # connections accepted a turn of the loop, well within FILES_RESERVED
ROOM_PAUSE = 0.05  # seconds: how long to stop accepting when there is no room


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


class _ServerLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server logger: a request it could not parse (an oversized header, a bad
    request line) or a client gone mid-answer is a WARNING line, not an ERROR traceback."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError | ConnectionError | RequestPayloadError):
            text = str(msg) % args if args else str(msg)
            text = text.replace("Error handling request", "refused a request", 1)
            self.logger.warning("%s: %s", text, one_line(exc_info))
        else:
            self.logger.exception(msg, *args, exc_info=exc_info, **kwargs)


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
                log.warning("could not accept a connection: %s", one_line(exc))
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
            log.warning("dropped a connection as it opened: %s", one_line(exc))
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
