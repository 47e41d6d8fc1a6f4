"""The App Home: refreshed when opened (app_home_opened), and its Acknowledge buttons."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from bot.services import Services
from bot.slack import home
from commands.context import listener_context, run_command
from commands.incident import acknowledge
from commands.interactions import action_value
from commands.remediate import decide, request_id_of


def register(app: AsyncApp, services: Services) -> None:
    @app.event("app_home_opened")
    async def home_opened(event: dict[str, Any]) -> None:
        if event.get("tab", "home") != "home":
            return  # the Messages tab
        await services.home.home_opened(str(event["user"]))

    @app.action(home.HOME_ACK_ACTION)
    async def home_ack(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: dict[str, Any]
    ) -> None:
        await ack()
        # The App Home has no response_url: the answer goes by direct message.
        ctx = listener_context(services, context, client, channel_id=None)
        incident_id = action_value(body)

        async def work() -> None:
            await acknowledge(ctx, incident_id)

        await run_command(
            ctx, "incident.ack", {"incident_id": incident_id, "via": "app_home"}, work
        )

    async def _home_decision(
        verb: str, body: dict[str, Any], client: AsyncWebClient, context: dict[str, Any]
    ) -> None:
        # The App Home has no response_url: the answer goes by direct message.
        ctx = listener_context(services, context, client, channel_id=None)
        await decide(ctx, verb, request_id_of(body))
        await services.home.home_opened(ctx.actor.user_id)  # the request leaves their list

    @app.action(home.HOME_APPROVE_ACTION)
    async def home_approve(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: dict[str, Any]
    ) -> None:
        await ack()
        await _home_decision("approve", body, client, context)

    @app.action(home.HOME_DENY_ACTION)
    async def home_deny(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: dict[str, Any]
    ) -> None:
        await ack()
        await _home_decision("deny", body, client, context)
