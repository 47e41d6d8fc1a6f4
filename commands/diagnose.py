"""`/diagnose <service> [check ...]`, the Diagnose button on incident cards, and the
suggestion buttons: thin listeners. Ack at once, call DiagnosticsService, post its report."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.diagnostics.plan import split_words
from bot.diagnostics.runs import DiagnosisRunning
from bot.diagnostics.service import Diagnosis
from bot.services import Services
from bot.slack import diagnosis_blocks as views
from commands.context import (
    CommandContext,
    command_words,
    listener_context,
    record_invocation,
    run_command,
)
from commands.interactions import action_value, on_click
from commands.remediate import request_remediation


async def answer_diagnosis(ctx: CommandContext, diagnosis: Diagnosis) -> None:
    """The summary and its evidence were posted by the service (through the outbox, or at
    once when the store could not take the record); tell the person what they must know."""
    report = diagnosis.report
    blocks = views.summary_blocks(
        report, actor=ctx.actor.user_id, incident_id=diagnosis.incident_id
    )
    if not ctx.channel_id:  # nowhere to post (the App Home): the summary is the answer
        await ctx.reply(views.summary_text(report), blocks=blocks)
    elif diagnosis.post_error is not None:
        await ctx.reply(views.post_failed(diagnosis.post_error), blocks=blocks)
    if not diagnosis.recorded:
        await ctx.reply(views.not_recorded())


async def run_diagnosis(
    ctx: CommandContext,
    service: str,
    checks: Sequence[str],
    via: str,
    incident_id: str | None = None,
) -> None:
    """Check who asks and what for, say the run has started, run it, post it: a refusal is
    the first and only answer, never one that follows "Diagnosing ...". The same run under
    way already (a double click) is answered with where its result will be posted.
    `incident_id` is the incident whose card was clicked (its channel may be the shared
    announcement channel)."""

    async def started(name: str, named: tuple[str, ...]) -> None:
        # As the catalog names them: `/diagnose WEB` is "Diagnosing `web`".
        await ctx.reply(views.acked(name, named))

    async def work() -> None:
        try:
            diagnosis = await ctx.services.diagnostics.diagnose(
                service,
                ctx.actor,
                checks=checks,
                channel_id=ctx.channel_id,
                request_id=ctx.request_id,
                via=via,
                incident_id=incident_id,
                on_start=started,
            )
        except DiagnosisRunning as exc:  # a double click, a second responder: one run
            await ctx.audit_refusal("diagnose.run", "refused: already running", args)
            await ctx.reply(views.already_running(exc.running))
            return
        await answer_diagnosis(ctx, diagnosis)

    args = {"service": service[:80], "checks": [c[:40] for c in checks], "via": via}
    await run_command(ctx, "diagnose.run", args, work, usage_for="diagnose")


def register(app: AsyncApp, services: Services) -> None:
    diagnostics = services.diagnostics

    @app.command("/diagnose")
    async def diagnose_command(
        ack: AsyncAck,
        command: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
        context: dict[str, Any],
    ) -> None:
        raw = str(command.get("text") or "")
        words = await command_words(
            ack, services, context, raw, usage_for="diagnose", action="diagnose"
        )
        if words is None:
            return
        words = split_words(words)  # `/diagnose checkout,postgres`: commas as spaces
        if not words or words[0].lower() == "help":
            # Answered from the policy in memory, on the ack itself.
            await ack(response_type="ephemeral", text=views.usage(diagnostics.service_names()))
            await record_invocation(
                services,
                context["actor"],
                "diagnose.help",
                "ok",
                {"text": raw[:200]},
                context.get("request_id"),
            )
            return
        # Who may diagnose is a directory look-up: the ack carries nothing, and the first
        # answer is either the refusal or "Diagnosing ...".
        await ack()
        ctx = listener_context(
            services, context, client, channel_id=command.get("channel_id"), respond=respond
        )
        await run_diagnosis(ctx, words[0], words[1:], via="command")

    @on_click(app, services, views.DIAGNOSE_ACTION)
    async def diagnose_clicked(ctx: CommandContext, body: dict[str, Any]) -> None:
        incident_id = action_value(body)

        async def work() -> None:
            incident = await services.incidents.get(incident_id)
            # Once each: "Web" and "web" on one incident are one service, one run.
            names = dict.fromkeys(s.lower() for s in incident.services)
            catalogued = [s for s in names if s in services.policy.services]
            if not catalogued:
                await ctx.reply(views.no_services(incident.id, diagnostics.service_names()))
                return
            # All at once, not one after another: a second click meanwhile finds each of them
            # running, instead of starting the later ones again behind the first click.
            await asyncio.gather(
                *(
                    run_diagnosis(ctx, s, (), via="button", incident_id=incident.id)
                    for s in catalogued
                )
            )

        await run_command(
            ctx, "diagnose.button", {"incident_id": incident_id}, work, read_only=True
        )

    @on_click(app, services, re.compile(views.SUGGESTION_PATTERN))
    async def suggestion_clicked(ctx: CommandContext, body: dict[str, Any]) -> None:
        raw = action_value(body)
        try:
            value = json.loads(raw)
            service, action, params = str(value["s"]), str(value["a"]), dict(value["p"])
            # The incident the diagnosis was for; buttons posted before it was named have none.
            incident_id = str(value.get("i") or "")[:80] or None
        except (ValueError, KeyError, TypeError, AttributeError):
            service, action, params, incident_id = "", "", {}, None

        if not action.startswith("advice."):
            # A real action: dry-run it and post the approval request (commands.remediate).
            await request_remediation(
                ctx, action, service, params=params, origin="diagnose", incident_id=incident_id
            )
            return

        async def work() -> None:
            would = diagnostics.describe_suggestion(service, action, params)
            await ctx.reply(views.suggestion_preview(would))

        args = {"service": service[:80], "action": action[:80], "params": params}
        await run_command(ctx, "remediation.preview", args, work, read_only=True)
