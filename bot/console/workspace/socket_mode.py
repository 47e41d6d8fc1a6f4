"""Socket Mode on the Slack double: apps.connections.open, the WebSocket, envelopes and acks."""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from bot.console.workspace.recording import Recording
from bot.console.workspace.state import WorkspaceState


class SocketMode(Recording):
    """SlackDouble's Socket Mode connections, the envelopes it sends and the acks it gets."""

    state: WorkspaceState
    acks: dict[str, dict[str, Any]]
    connection_count: int
    _tickets: set[str]
    _sockets: list[web.WebSocketResponse]

    @property
    def url(self) -> str:
        raise NotImplementedError  # SlackDouble's root URL

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
