"""Helpers for the incident-lifecycle e2e tests: declare, read what Slack saw, count rows."""

from __future__ import annotations

from typing import Any

import yaml

from bot.console.workspace import RecordedCall
from bot.models import Incident
from bot.policy import Policy, default_policy_text
from tests.harness import BotHarness

ANNOUNCE = "C0INCIDENTS"  # the built-in policy's announcement channel
HEADLINES = ("Incident Update:", "Incident Resolved:", "Incident Reopened:", "Severity Changed:")


def policy_with(**changes: Any) -> Policy:
    """The built-in policy with top-level settings replaced (e.g. escalation={...})."""
    data = yaml.safe_load(default_policy_text())
    data.update(changes)
    return Policy.model_validate(data)


async def reply(harness: BotHarness, text: str, **kwargs: Any) -> str:
    """Run `/incident <text>` and return the (ephemeral) answer's text."""
    response = await harness.command(text, **kwargs)
    assert response.status == 200
    [answer] = await harness.replies()
    assert answer.get("response_type") == "ephemeral", answer
    return str(answer["text"])


async def declare(
    harness: BotHarness,
    text: str = "declare P1 Checkout API returns 502",
    *,
    user_id: str = "U0ALICE",
) -> Incident:
    """Declare, let every Slack step run, and return the incident as stored now."""
    answer = await reply(harness, text, user_id=user_id)
    assert "Declared" in answer, answer
    await harness.settle()
    newest = (await harness.services.incidents.list(open_only=False))[0]
    return await harness.services.incidents.get(newest.id)


async def current(harness: BotHarness, incident: Incident) -> Incident:
    return await harness.services.incidents.get(incident.id)


def posts(harness: BotHarness, channel: str) -> list[RecordedCall]:
    """Messages the bot posted successfully in `channel`, oldest first."""
    return [
        call
        for call in harness.double.calls_to("chat.postMessage")
        if call.ok and call.response.get("channel") == channel
    ]


def updates(harness: BotHarness, channel: str) -> list[RecordedCall]:
    """Status updates in the communication template posted in `channel` (not the cards,
    which carry buttons: the announcement and the pinned summary)."""
    return [
        c
        for c in posts(harness, channel)
        if str(c.params["text"]).startswith(HEADLINES)
        and "incident_actions" not in str(c.params.get("blocks"))
    ]


def rendered(call: RecordedCall) -> str:
    return str(call.params.get("blocks", "")) + str(call.params.get("text", ""))


def pinned_summary(harness: BotHarness, channel: str) -> dict[str, Any]:
    [summary] = harness.double.pins(channel)
    return summary


def element(message: dict[str, Any], action_id: str) -> dict[str, Any] | None:
    """The button with `action_id` in a message, or None."""
    for block in message.get("blocks", []):
        for item in block.get("elements", []) if block.get("type") == "actions" else []:
            if item.get("action_id") == action_id:
                return dict(item)
    return None


def human_message(
    harness: BotHarness, channel: str, user_id: str, text: str, thread_ts: str | None = None
) -> str:
    """A message written by a person in `channel` (the double's state); returns its ts."""
    found = harness.double.channel(channel)
    assert found is not None
    ts = harness.double.state.new_ts()
    message: dict[str, Any] = {"type": "message", "user": user_id, "text": text, "ts": ts}
    if thread_ts:
        message["thread_ts"] = thread_ts
    found.messages.append(message)
    return ts


async def count(harness: BotHarness, sql: str, *params: Any) -> int:
    async with harness.store.transaction() as tx:
        row = await tx.fetchone(f"SELECT COUNT(*) AS n FROM {sql}", params)
    return int(row["n"]) if row else 0


async def stored_state(harness: BotHarness) -> tuple[int, int, int]:
    """(timeline entries, outbox effects, sum of incident versions): what a change moves."""
    async with harness.store.transaction() as tx:
        row = await tx.fetchone("SELECT COALESCE(SUM(version), 0) AS v FROM incidents")
    versions = int(row["v"]) if row else 0
    return await count(harness, "timeline"), await count(harness, "outbox"), versions
