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

from tests.servers import LOOPBACK
from tests.tcp_proxy import TcpProxy, close


class SilentTcp(TcpProxy):
    def __init__(self, upstream_port: int) -> None:
        super().__init__(upstream_port)
        self.silenced = 0  # client connections left open after their server side closed

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection((LOOPBACK, self.upstream_port))
        except OSError:  # the server is down: refused, as it would be
            close(client)
            return
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
        close(upstream)
        close(client)
