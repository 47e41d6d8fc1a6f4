"""What the tests' loopback TCP proxies share (tests/faulty_tcp.py, tests/silent_tcp.py): a
listener on a free loopback port, a thread accepting connections and handing each to the
proxy's `_relay`, and a stop that closes the listener and every socket relayed."""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Self

from tests.servers import LOOPBACK


class TcpProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []

    @property
    def port(self) -> int:
        assert self._listener is not None, "not started"
        port: int = self._listener.getsockname()[1]
        return port

    def start(self) -> Self:
        self._listener = socket.create_server((LOOPBACK, 0))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for sock in self._sockets:
            close(sock)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # stopped
                return
            self._relay(client)

    def _relay(self, client: socket.socket) -> None:
        """Connect `client` to the upstream server (threads of its own: never blocking)."""
        raise NotImplementedError


def close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
