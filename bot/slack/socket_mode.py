"""Socket Mode's handler, with each listener's work after its ack counted in the AckGate
(bot.slack.acks), as over HTTP: a stop waits for it before the store closes. Bolt's own
handler dispatched with its plain ack, and a stop right after the envelopes' acks lost the
acknowledged declarations."""

from __future__ import annotations

from time import time

from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import send_async_response
from slack_bolt.adapter.socket_mode.internals import build_headers
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.acks import AckGate, PromptAck


class TrackedSocketModeHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode handler whose listeners ack with a PromptAck of `gate`."""

    def __init__(
        self, app: AsyncApp, *, app_token: str, web_client: AsyncWebClient, gate: AckGate
    ) -> None:
        super().__init__(app, app_token=app_token, web_client=web_client)
        self.gate = gate

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]  # as Bolt's own
        start = time()
        request = AsyncBoltRequest(
            mode="socket_mode",
            body=req.payload,
            headers=build_headers(req),
        )
        request.context["ack"] = PromptAck(self.gate)
        response = await self.app.async_dispatch(request)
        await send_async_response(client, req, response, start)
