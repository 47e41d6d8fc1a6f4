"""A page on reopening says so: the page line and the DM said "on declaration" when the
escalation's start was guessed from its anchor being the declaration's time (a reopening in
the same instant as the declaration, as the bot's clock may tell, passed for one)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.clock import FakeClock
from bot.models import Incident
from bot.slack.rich import mrkdwn
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import declare, posts
from tests.harness import BotHarness


async def _page_lines(harness: BotHarness, incident: Incident) -> list[str]:
    events = await harness.services.incidents.timeline(incident.id)
    return [mrkdwn(e.parts, e.said) for e in events if e.kind == "paged"]


def _dms(harness: BotHarness, user_id: str) -> list[str]:
    channel = harness.double.state.open_im(user_id)[0].id
    return [str(call.params.get("text")) for call in posts(harness, channel)]


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_a_p1_lowered_resolved_and_reopened_is_paged_on_reopening(
    make_harness: HarnessFactory, store: str
) -> None:
    # The bot's clock does not move: the reopening comes at the declaration's instant.
    harness = await make_harness(store, clock=FakeClock(datetime.now(UTC)))
    incident = await declare(harness, "declare P1 Checkout API returns 502")
    for command in (f"severity P2 {incident.id}", f"resolve {incident.id} rolled back"):
        await harness.command(command)
        await harness.replies()
    await harness.command(f"reopen {incident.id} it came back")
    await harness.replies()
    await harness.settle()

    assert await _page_lines(harness, incident) == [
        "Paged level 1: <@U0ONCALL> (on declaration)",
        "Paged level 1: <@U0ONCALL> (on reopening)",
    ]
    first, again = [t for t in _dms(harness, "U0ONCALL") if "escalation level 1" in t.lower()]
    assert "It has just been declared." in first
    assert "It has just been reopened." in again
    state = await harness.services.escalation.state(incident.id)
    assert state is not None and state.started_by == "reopened"
