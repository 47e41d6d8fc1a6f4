"""The card's Escalate button carries the level its presser saw: two responders pressing it
at the same moment page one level, not two (the second is told who was first)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.models import Incident, Severity
from bot.slack import blocks
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import (
    ANNOUNCE,
    count,
    declare,
    element,
    pinned_summary,
    policy_with,
)
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
    assert "Level 1 of 3 paged" in str(summary["blocks"])
    button = element(summary, blocks.ESCALATE_ACTION) or {}
    assert "Page escalation level 2 of 3" in button["confirm"]["text"]["text"]
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
    assert "Level 2 of 3 paged" in str(summary["blocks"])
    assert (element(summary, blocks.ESCALATE_ACTION) or {})["value"] == f"{incident.id}:2:P0"


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
    # Nobody is left to page: the card says so and offers no Escalate button to press.
    await harness.settle()
    summary = pinned_summary(harness, incident.channel_id or "")
    assert "All 3 levels paged" in str(summary["blocks"])
    assert element(summary, blocks.ESCALATE_ACTION) is None


async def test_a_double_click_on_escalate_pages_once_and_says_so(harness: BotHarness) -> None:
    incident = await _declared_and_paged(harness)
    room = incident.channel_id or ""
    summary = pinned_summary(harness, room)
    for _ in range(2):  # two gestures: two trigger_ids, both from the same card
        await harness.click(
            blocks.ESCALATE_ACTION,
            message=summary,
            channel_id=room,
            user_id="U0BOB",
            message_ts=summary["ts"],
        )
    first, second = (a["text"] for a in await harness.replies(2))
    assert first.startswith(f"Escalated *{incident.id}* to level 2")
    assert f"*{incident.id}* was already escalated to level 2 by you" in second
    assert await _paged_by_hand(harness, incident) == 1


async def test_a_card_left_behind_by_the_schedule_names_the_schedule(
    make_harness: HarnessFactory,
) -> None:
    levels = [
        {"after": 0, "notify": ["U0ONCALL"]},
        {"after": 1, "notify": ["U0ENGLEAD"]},  # a second later: the card is stale
        {"after": "1h", "notify": ["U0VPENG"]},
    ]
    harness = await make_harness(policy=policy_with(escalation={"P0": levels}))
    incident = await declare(harness, "declare P0 Checkout API returns 502")
    room = incident.channel_id or ""
    stale = pinned_summary(harness, room)
    seen = (element(stale, blocks.ESCALATE_ACTION) or {})["value"]
    await until(lambda: _level_is(harness, incident, 2), "level 2 paged by the schedule")
    await harness.click(blocks.ESCALATE_ACTION, value=seen, channel_id=room, user_id="U0BOB")
    [answer] = await harness.replies()
    assert "was already escalated to level 2 by the schedule" in answer["text"], answer
    assert await _level(harness, incident) == 2 and await _paged_by_hand(harness, incident) == 0
    # Reopened after a resolution, it starts again: a card from before is refused too.
    await harness.settle()
    before = (element(pinned_summary(harness, room), blocks.ESCALATE_ACTION) or {})["value"]
    assert before == f"{incident.id}:2:P0"
    await harness.command(f"resolve {incident.id} fixed")
    await harness.command(f"reopen {incident.id} back again")
    await harness.replies(2)
    await until(lambda: _level_is(harness, incident, 1), "level 1 paged on reopening")
    await harness.click(blocks.ESCALATE_ACTION, value=before, channel_id=room, user_id="U0BOB")
    [answer] = await harness.replies()
    assert "stands at escalation level 1 now, not level 2" in answer["text"], answer
    assert await _paged_by_hand(harness, incident) == 0


async def _level_is(harness: BotHarness, incident: Incident, level: int) -> bool:
    return await _level(harness, incident) == level


def _card_in(harness: BotHarness, channel: str, incident: Incident) -> dict[str, Any]:
    """The incident's card (the message with its buttons) as `channel` holds it now."""
    found = harness.double.channel(channel)
    assert found is not None
    [card] = [
        m
        for m in found.messages
        if incident.id in str(m.get("blocks")) and element(m, blocks.ESCALATE_ACTION)
    ]
    return dict(card)


async def test_a_card_from_before_a_severity_raise_pages_nobody(harness: BotHarness) -> None:
    # A P3 card's Escalate offered P3's level 2 (the team lead); after a raise to P1 it paged
    # P1's level 2 (the engineering lead), people its presser never saw on the card.
    incident = await declare(harness, "declare P3 Checkout API slow")
    await until(lambda: _level(harness, incident), "level 1 paged at declaration")
    await harness.settle()
    stale = _card_in(harness, ANNOUNCE, incident)
    seen = (element(stale, blocks.ESCALATE_ACTION) or {})["value"]
    assert seen == f"{incident.id}:1:P3"
    await harness.command(f"severity P1 {incident.id}")
    await harness.replies()
    await harness.settle()

    await harness.click(blocks.ESCALATE_ACTION, value=seen, channel_id=ANNOUNCE, user_id="U0BOB")
    [answer] = await harness.replies()
    assert f"*{incident.id}* is :large_orange_circle: P1 High now, not" in answer["text"]
    assert "nothing was paged" in answer["text"]
    assert "it stands at level 1 of 2 of P1" in answer["text"], answer
    assert await _paged_by_hand(harness, incident) == 0 and await _level(harness, incident) == 1
    refusals = [
        (e.outcome, e.args)
        async for e in harness.services.audit.entries()
        if e.actor == "U0BOB" and e.action == "incident.escalate"
    ]
    assert [outcome for outcome, _ in refusals] == ["refused: severity changed"]
    assert refusals[0][1]["severity_seen"] == "P3" and refusals[0][1]["severity"] == "P1"

    # The refreshed card offers P1's level 2, and pages it.
    fresh = element(_card_in(harness, ANNOUNCE, incident), blocks.ESCALATE_ACTION) or {}
    assert fresh["value"] == f"{incident.id}:1:P1"
    await harness.click(
        blocks.ESCALATE_ACTION, value=fresh["value"], channel_id=ANNOUNCE, user_id="U0BOB"
    )
    [answer] = await harness.replies()
    assert answer["text"].startswith(
        f"Escalated *{incident.id}* to level 2 of 2: paging <@U0ENGLEAD>"
    )


def test_escalate_values_of_older_cards_still_read() -> None:
    assert blocks.escalate_value_parts("INC-20261127-001:2:P0") == (
        "INC-20261127-001",
        2,
        Severity.P0,
    )
    assert blocks.escalate_value_parts("INC-20261127-001:2") == ("INC-20261127-001", 2, None)
    assert blocks.escalate_value_parts("INC-20261127-001") == ("INC-20261127-001", None, None)


async def test_a_page_by_hand_of_an_acknowledged_incident_asks_to_join_not_to_acknowledge(
    harness: BotHarness,
) -> None:
    # The page told the team lead to acknowledge an incident acknowledged already: at 3 a.m.
    # that reads as "nobody is on it", and their /incident ack answered "already acknowledged".
    incident = await declare(harness, "declare P2 Queue backlog")
    await harness.command(f"ack {incident.id}", user_id="U0ONCALL")
    await harness.replies()
    await harness.command(f"escalate {incident.id} need the queue owners", user_id="U0ONCALL")
    await harness.replies()
    await harness.settle()
    sent = [
        str(c.params["text"])
        for c in harness.double.calls_to("chat.postMessage")
        if c.ok and "escalation level 2" in str(c.params["text"]).lower()
    ]
    [post] = [t for t in sent if t.startswith(":rotating_light: *Escalation level 2*")]
    [dm] = [t for t in sent if "You are paged (escalation level 2)" in t]
    assert "acknowledge with" not in post.lower() and "acknowledge with" not in dm.lower()
    assert post.endswith("need the queue owners. It is acknowledged already: join in.")
    assert dm.endswith(f"<#{ANNOUNCE}>: it is acknowledged already by <@U0ONCALL>."), dm
