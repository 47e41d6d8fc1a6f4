"""The card's Escalate button carries the level its presser saw: two responders pressing it
at the same moment page one level, not two (the second is told who was first)."""

from __future__ import annotations

import asyncio

import pytest

from bot.models import Incident
from bot.slack import blocks
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import count, declare, element, pinned_summary
from tests.harness import BotHarness
from tests.waiting import until


async def _level(harness: BotHarness, incident: Incident) -> int:
    state = await harness.services.escalation.state(incident.id)
    return state.level if state is not None else 0


async def _paged_by_hand(harness: BotHarness, incident: Incident) -> int:
    return await count(
        harness,
        "reminders WHERE incident_id = ? AND kind = 'page' AND actor IS NOT NULL",
        incident.id,
    )


async def _declared_and_paged(harness: BotHarness) -> Incident:
    """A P0 (three levels) whose first level has been paged and whose card shows it."""
    incident = await declare(harness, "declare P0 Checkout API returns 502")
    await until(lambda: _level(harness, incident), "level 1 paged at declaration")
    await harness.settle()
    return incident


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_two_people_press_escalate_at_the_same_moment_page_one_level(
    make_harness: HarnessFactory, store: str
) -> None:
    harness = await make_harness(store)
    incident = await _declared_and_paged(harness)
    room = incident.channel_id or ""
    summary = pinned_summary(harness, room)
    assert "Level 1 paged" in str(summary["blocks"])
    clicks = [
        harness.click(
            blocks.ESCALATE_ACTION,
            message=summary,
            channel_id=room,
            user_id=user,
            message_ts=summary["ts"],
        )
        for user in ("U0ALICE", "U0BOB")
    ]
    assert [r.status for r in await asyncio.gather(*clicks)] == [200, 200]
    answers = sorted((a["text"] for a in await harness.replies(2)), key=lambda t: "already" in t)
    assert answers[0].startswith(f"Escalated *{incident.id}* to level 2"), answers
    first = "U0BOB" if "<@U0BOB>" in answers[1] else "U0ALICE"
    assert f"was already escalated to level 2 by <@{first}>" in answers[1], answers
    assert "nothing changed" in answers[1]

    assert await _level(harness, incident) == 2
    assert await _paged_by_hand(harness, incident) == 1
    outcomes = sorted(
        [
            (e.action, e.outcome)
            async for e in harness.services.audit.entries()
            if e.actor in ("U0ALICE", "U0BOB") and "escalat" in e.action
        ]
    )
    assert outcomes == [
        ("escalation.page", "ok"),
        ("incident.escalate", "refused: already escalated"),
    ]
    await harness.settle()
    # The card now shows the new level, and its button moves on from there.
    summary = pinned_summary(harness, room)
    assert "Level 2 paged" in str(summary["blocks"])
    assert (element(summary, blocks.ESCALATE_ACTION) or {})["value"] == f"{incident.id}:2"


async def test_a_card_rendered_before_levels_were_carried_still_escalates(
    harness: BotHarness,
) -> None:
    incident = await _declared_and_paged(harness)
    # An old card's button: the incident ID alone, one level up from wherever it stands.
    for expected in (2, 3):
        await harness.click(blocks.ESCALATE_ACTION, value=incident.id, user_id="U0BOB")
        [answer] = await harness.replies()
        assert answer["text"].startswith(f"Escalated *{incident.id}* to level {expected}")
    assert await _paged_by_hand(harness, incident) == 2
