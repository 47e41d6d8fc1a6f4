"""A loopback TCP proxy in front of a real server (PostgreSQL, Redis) that lets a change go
through and then breaks the request after it: the read back of a change that was made.

Bytes pass unchanged both ways. Once a request carrying `after` (b"pg_terminate_backend",
b"CONFIG SET"'s b"$3\\r\\nSET\\r\\n") has been passed on, the connection's next request that
does not carry it meets the fault, once per proxy:

- "close": the proxy closes both sides (the connection drops);
- "hold": the request is never passed on and nothing more comes back (no answer in time);
- a callable: it runs first (say, the server ends the client's session itself), then the
  request is passed on and the client reads whatever the server now answers;
- "mute": unlike the others, the request carrying `after` itself is passed on (the server
  acts on it) but nothing more comes back on that connection, its answer included: a client
  cancelled while it waits cannot tell whether the request landed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

from tests.servers import LOOPBACK
from tests.tcp_proxy import TcpProxy, close

Fault = str | Callable[[], None]


class FaultyTcp(TcpProxy):
    def __init__(self, upstream_port: int, *, after: bytes, fault: Fault) -> None:
        if isinstance(fault, str) and fault not in ("close", "hold", "mute"):
            raise ValueError(f"unknown fault {fault!r}")
        super().__init__(upstream_port)
        self.after, self.fault = after, fault
        self.tripped = 0
        self.accepted = 0  # connections the client opened (a cancel request opens its own)
        self._lock = threading.Lock()

    def _relay(self, client: socket.socket) -> None:
        self.accepted += 1
        upstream = socket.create_connection((LOOPBACK, self.upstream_port))
        self._sockets += [client, upstream]
        muted = threading.Event()  # this connection's answers are swallowed ("mute")
        threading.Thread(target=self._answers, args=(upstream, client, muted), daemon=True).start()
        threading.Thread(target=self._requests, args=(client, upstream, muted), daemon=True).start()

    def _answers(
        self, upstream: socket.socket, client: socket.socket, muted: threading.Event
    ) -> None:
        with contextlib.suppress(OSError):
            while chunk := upstream.recv(65536):
                if not muted.is_set():
                    client.sendall(chunk)
        close(client)

    def _requests(
        self, client: socket.socket, upstream: socket.socket, muted: threading.Event
    ) -> None:
        changed = False
        with contextlib.suppress(OSError):
            while chunk := client.recv(65536):
                if self.fault == "mute":
                    if self.after in chunk and self._trip():
                        muted.set()  # before it is passed on: its answer comes after
                elif self.after in chunk:
                    changed = True
                elif changed and self._trip():
                    if self.fault == "close":
                        break
                    if self.fault == "hold":
                        while client.recv(65536):  # swallow until the client gives up
                            pass
                        break
                    assert callable(self.fault)
                    self.fault()
                upstream.sendall(chunk)
        close(upstream)
        close(client)

    def _trip(self) -> bool:
        with self._lock:
            if self.tripped:
                return False
            self.tripped = 1
            return True
