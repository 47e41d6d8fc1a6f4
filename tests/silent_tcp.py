"""A loopback TCP proxy in front of a real server that loses the server's goodbye.

Bytes pass unchanged both ways. When the server closes a connection (it stopped, it
restarted), the proxy keeps the client's side open and swallows whatever the client sends on
it: the client is left on a connection that says nothing, as when the server's host vanished
without a FIN or a NAT or load balancer forgot the connection. New connections reach the
server as usual (once it is back).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Self

from tests.servers import LOOPBACK


class SilentTcp:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.silenced = 0  # client connections left open after their server side closed
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
            _close(sock)

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
            try:
                upstream = socket.create_connection((LOOPBACK, self.upstream_port))
            except OSError:  # the server is down: refused, as it would be
                _close(client)
                continue
            self._sockets += [client, upstream]
            threading.Thread(target=self._answers, args=(upstream, client), daemon=True).start()
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()

    def _answers(self, upstream: socket.socket, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := upstream.recv(65536):
                client.sendall(chunk)
        # The server's goodbye is lost: the client's side stays open, silent.
        self.silenced += 1

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := client.recv(65536):
                with contextlib.suppress(OSError):  # gone upstream: swallowed
                    upstream.sendall(chunk)
        _close(upstream)
        _close(client)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
