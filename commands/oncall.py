"""`/oncall [P0|P1|P2|P3]`: who is paged at each escalation level, per severity, and who the
paging services say is on call now; the people who left Slack and the empty user groups are
marked (no page reaches them)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import UsageError
from bot.escalation.oncall import OnCall as OnCallRow
from bot.escalation.unreached import GROUP_GONE
from bot.http_errors import UNREACHABLE
from bot.incidents.parsing import check_command
from bot.models import Severity
from bot.permissions import is_group
from bot.services import Services
from bot.slack import escalation_text, help_text
from bot.slack.escape import from_slack
from bot.slack_ids import is_user_id
from commands.context import record_invocation

# How long the answer waits for Slack to say whether the people named are still there; it
# rides on the ack, which Slack wants within 3 s. Unanswered by then, nobody is marked.
_LOOKUP_SECONDS = 1.5


async def _left_slack(client: AsyncWebClient, rows: Sequence[OnCallRow]) -> dict[str, str]:
    """{user or group ID: why} for the people the levels name who left Slack (deactivated,
    or not in the workspace) and their user groups with nobody in them (or that Slack no
    longer knows): a page to them reaches nobody, and only the timeline said so."""
    named = {p for row in rows for level in row.levels for p in level.recipients}
    people = sorted(p for p in named if is_user_id(p) or is_group(p))

    async def why(target: str) -> str:
        return await (_group_why(target) if is_group(target) else _person_why(target))

    async def _person_why(user_id: str) -> str:
        try:
            response = await client.users_info(user=user_id)
        except SlackApiError as exc:
            missing = exc.response.get("error") == "user_not_found"
            return "not in this Slack workspace" if missing else ""
        except UNREACHABLE:
            return ""
        return "deactivated in Slack" if (response.get("user") or {}).get("deleted") else ""

    async def _group_why(group_id: str) -> str:
        # As a page reads them (bot.escalation.unreached): only an empty group or one Slack
        # says is gone reaches nobody; any other refusal is the bot's own, and says nothing.
        try:
            response = await client.usergroups_users_list(usergroup=group_id)
        except SlackApiError as exc:
            gone = exc.response.get("error") in GROUP_GONE
            return "a user group Slack does not know" if gone else ""
        except UNREACHABLE:
            return ""
        return "" if response.get("users") else "a user group with nobody in it"

    try:
        found = await asyncio.wait_for(
            asyncio.gather(*(why(p) for p in people)), timeout=_LOOKUP_SECONDS
        )
    except TimeoutError:
        return {}
    return {person: reason for person, reason in zip(people, found, strict=True) if reason}


def register(app: AsyncApp, services: Services) -> None:
    async def answer(
        severity: Severity | None, ack: AsyncAck, respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        rows = services.escalation.oncall(severity)
        gone = await _left_slack(client, rows)
        if services.paging is None or not services.paging.oncall.pagers:
            # From the policy in memory: the answer rides on the ack itself.
            await ack(response_type="ephemeral", text=escalation_text.oncall_text(rows, (), gone))
            return
        # The paging services' schedules need a round trip (cached): ack first. Only those
        # a shown severity's first level names page their on-call.
        await ack()
        named = {target for row in rows for target in escalation_text.first_level(row)}
        now = await services.paging.oncall.everyone(named)
        await respond(response_type="ephemeral", text=escalation_text.oncall_text(rows, now, gone))

    @app.command("/oncall")
    async def oncall_command(
        ack: AsyncAck,
        respond: AsyncRespond,
        client: AsyncWebClient,
        command: dict[str, Any],
        context: dict[str, Any],
    ) -> None:
        raw = str(command.get("text") or "")
        typed = from_slack(raw).strip()  # quoted as the person typed it: `@here`, not markup
        word = typed.upper()
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
                    text=help_text.usage("oncall", f"'{typed[:20]}' is not a severity."),
                )
            else:
                await answer(Severity(word) if word else None, ack, respond, client)
                outcome = "ok"
        await record_invocation(
            services, context["actor"], "oncall", outcome, args, context.get("request_id")
        )
