"""`/oncall [P0|P1|P2|P3]`: who is paged at each escalation level, per severity, and who the
paging services say is on call now."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.errors import UsageError
from bot.incidents.parsing import check_command
from bot.models import Severity
from bot.services import Services
from bot.slack import escalation_text, help_text
from commands.context import record_invocation


def register(app: AsyncApp, services: Services) -> None:
    async def answer(severity: Severity | None, ack: AsyncAck, respond: AsyncRespond) -> None:
        rows = services.escalation.oncall(severity)
        if services.paging is None or not services.paging.oncall.pagers:
            # From the policy in memory: no I/O, so the answer rides on the ack itself.
            await ack(response_type="ephemeral", text=escalation_text.oncall_text(rows))
            return
        # The paging services' schedules need a round trip (cached): ack first. Only those
        # a shown severity's first level names page their on-call.
        await ack()
        named = {target for row in rows for target in escalation_text.first_level(row)}
        now = await services.paging.oncall.everyone(named)
        await respond(response_type="ephemeral", text=escalation_text.oncall_text(rows, now))

    @app.command("/oncall")
    async def oncall_command(
        ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any], context: dict[str, Any]
    ) -> None:
        raw = str(command.get("text") or "")
        word = raw.strip().upper()
        args = {"text": raw}
        outcome = "rejected: usage"
        try:
            check_command(raw)  # the bounds every command's text keeps
        except UsageError as exc:
            await ack(response_type="ephemeral", text=help_text.usage("oncall", str(exc)))
        else:
            if word and word not in Severity.__members__:
                # The usage answer quotes at most 20 characters, written out and escaped.
                await ack(
                    response_type="ephemeral",
                    text=help_text.usage("oncall", f"'{word[:20]}' is not a severity."),
                )
            else:
                await answer(Severity(word) if word else None, ack, respond)
                outcome = "ok"
        await record_invocation(
            services, context["actor"], "oncall", outcome, args, context.get("request_id")
        )
