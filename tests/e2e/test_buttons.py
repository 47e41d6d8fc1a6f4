"""Buttons on the pinned summary: Acknowledge, Escalate, Resolve (with its confirm dialog).
Signed block_actions in; the card refreshed in place; every click audited."""

from __future__ import annotations

import asyncio

import pytest

from bot.models import Status
from bot.slack import blocks
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import (
    count,
    current,
    declare,
    element,
    pinned_summary,
    updates,
)
from tests.harness import BotHarness


async def _click(harness: BotHarness, action_id: str, room: str, user_id: str) -> None:
    summary = pinned_summary(harness, room)
    response = await harness.click(
        action_id, message=summary, channel_id=room, user_id=user_id, message_ts=summary["ts"]
    )
    assert response.status == 200


async def test_acknowledge_button_updates_the_summary(harness: BotHarness) -> None:
    incident = await declare(harness)
    room = incident.channel_id or ""
    await _click(harness, blocks.ACK_ACTION, room, "U0ONCALL")
    [answer] = await harness.replies()
    assert answer["response_type"] == "ephemeral" and "You acknowledged" in answer["text"]
    await harness.settle()

    summary = pinned_summary(harness, room)
    assert element(summary, blocks.ACK_ACTION) is None  # nobody needs to press it again
    assert "<@U0ONCALL>" in str(summary["blocks"])
    assert (await current(harness, incident)).acknowledged_by == "U0ONCALL"
    [entry] = [e async for e in harness.services.audit.entries() if e.action == "incident.ack"]
    assert (entry.actor, entry.outcome) == ("U0ONCALL", "ok")
    assert entry.request_id and entry.request_id.startswith("trigger:")


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_two_people_press_acknowledge_at_the_same_moment(
    make_harness: HarnessFactory, store: str
) -> None:
    harness = await make_harness(store)
    incident = await declare(harness)
    room = incident.channel_id or ""
    summary = pinned_summary(harness, room)
    clicks = [
        harness.click(
            blocks.ACK_ACTION,
            message=summary,
            channel_id=room,
            user_id=user,
            message_ts=summary["ts"],
        )
        for user in ("U0ALICE", "U0BOB")
    ]
    assert [r.status for r in await asyncio.gather(*clicks)] == [200, 200]
    answers = sorted(a["text"] for a in await harness.replies(2))
    assert "already acknowledged by" in answers[0] and "You acknowledged" in answers[1]
    await harness.settle()

    stored = await current(harness, incident)
    assert stored.acknowledged_by in ("U0ALICE", "U0BOB")
    assert await count(harness, "timeline WHERE kind = 'acknowledged'") == 1
    outcomes = sorted(
        [e.outcome async for e in harness.services.audit.entries() if e.action == "incident.ack"]
    )
    assert outcomes == ["ok", "refused: already acknowledged"]


async def test_resolve_button_asks_first_then_resolves(harness: BotHarness) -> None:
    incident = await declare(harness)
    room = incident.channel_id or ""
    button = element(pinned_summary(harness, room), blocks.RESOLVE_ACTION)
    assert button is not None and button["style"] == "danger"
    dialog = button["confirm"]
    assert dialog["confirm"]["text"] == "Resolve" and incident.id in dialog["text"]["text"]

    await _click(harness, blocks.RESOLVE_ACTION, room, "U0BOB")
    [answer] = await harness.replies()
    assert "is resolved" in answer["text"]
    await harness.settle()
    stored = await current(harness, incident)
    assert stored.status is Status.RESOLVED and stored.resolved_by == "U0BOB"
    assert "Incident Resolved" in updates(harness, room)[-1].params["text"]
    summary = pinned_summary(harness, room)
    assert "RESOLVED" in str(summary["blocks"]) and element(summary, blocks.RESOLVE_ACTION) is None
    # The button's resolution is the bot's words, kept as text: it named the presser as a
    # mention, which every reader saw escaped ("Resolved by <@U0BOB>" on the card).
    assert stored.resolution == "Resolved with the Resolve button (no summary given)."
    for shown in (str(summary["blocks"]), str(updates(harness, room)[-1].params["blocks"])):
        assert "&lt;@" not in shown and "Resolved with the Resolve button" in shown
    # Never acknowledged: the resolved card says so, not "Not yet" as if pages were waiting.
    assert "Never (resolved first)" in str(summary["blocks"]) and "Not yet" not in str(summary)

    # A stale copy of the card clicked again: a short answer, nothing stored.
    before = await count(harness, "timeline")
    await harness.click(blocks.RESOLVE_ACTION, value=incident.id, channel_id=room, user_id="U0BOB")
    [again] = await harness.replies()
    assert "resolved" in again["text"] and "reopen" in again["text"]
    assert await count(harness, "timeline") == before
    [refusal] = [
        e
        async for e in harness.services.audit.entries()
        if e.action == "incident.resolve" and e.outcome != "ok"
    ]
    assert refusal.outcome.startswith("refused") and refusal.args["via"] == "button"


async def test_escalate_button_pages_by_hand(harness: BotHarness) -> None:
    incident = await declare(harness)
    room = incident.channel_id or ""
    button = element(pinned_summary(harness, room), blocks.ESCALATE_ACTION)
    assert button is not None and "confirm" in button
    await _click(harness, blocks.ESCALATE_ACTION, room, "U0BOB")
    [answer] = await harness.replies()
    assert f"Escalated *{incident.id}*" in answer["text"], answer["text"]
    entries = [e async for e in harness.services.audit.entries() if e.actor == "U0BOB"]
    assert [e.outcome for e in entries if "escalat" in e.action] == ["ok"]


async def test_acknowledge_button_of_an_unknown_incident(harness: BotHarness) -> None:
    await harness.click(blocks.ACK_ACTION, value="INC-20990101-009", user_id="U0BOB")
    [answer] = await harness.replies()
    assert "There is no incident INC-20990101-009" in answer["text"]
    assert await count(harness, "timeline") == 0
