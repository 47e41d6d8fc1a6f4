"""The Silence button on an alerts' thread message: a thin listener. Ack, call
SilenceService, answer privately; the channel hears of it through the outbox."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.errors import NotFound, UsageError
from bot.services import Services
from bot.slack import alert_blocks as views
from commands.context import CommandContext, run_command
from commands.interactions import action_value, on_click


def register(app: AsyncApp, services: Services) -> None:
    @on_click(app, services, views.SILENCE_ACTION)
    async def silence_clicked(ctx: CommandContext, body: dict[str, Any]) -> None:
        value = action_value(body)

        async def work() -> None:
            if services.silences is None:
                raise UsageError("Alerts are not configured (alerts: in the policy).")
            try:
                incident_id, batch = views.read_silence_value(value)
            except ValueError:
                raise NotFound("That button does not name a batch of alerts.") from None
            done = await services.silences.silence(
                incident_id, batch, ctx.actor, request_id=ctx.request_id
            )
            await ctx.reply(views.silence_answer(done))

        await run_command(ctx, "alerts.silence", {"value": value[:100]}, work)
