"""The Silence button on an alerts' thread message: a thin listener. Ack, call
SilenceService, answer privately; the channel hears of it through the outbox."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import UsageError
from bot.services import Services
from bot.slack import alert_blocks as views
from commands.context import action_value, click_context, run_command


def register(app: AsyncApp, services: Services) -> None:
    @app.action(views.SILENCE_ACTION)
    async def silence_clicked(
        ack: AsyncAck,
        body: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
        context: dict[str, Any],
    ) -> None:
        await ack()
        ctx = click_context(services, context, client, body, respond)
        value = action_value(body)

        async def work() -> None:
            if services.silences is None:
                raise UsageError("Alerts are not configured (alerts: in the policy).")
            try:
                incident_id, batch = views.read_silence_value(value)
            except ValueError:
                raise UsageError("That button does not name a batch of alerts.") from None
            done = await services.silences.silence(
                incident_id, batch, ctx.actor, request_id=ctx.request_id
            )
            await ctx.reply(views.silence_answer(done))

        await run_command(ctx, "alerts.silence", {"value": value[:100]}, work)
