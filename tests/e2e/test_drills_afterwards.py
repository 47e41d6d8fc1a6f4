"""A drill after it ends, on both stores: no post-incident review reminders, and its
postmortem's action items kept off the App Home, as README says drills are."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.escalation import ReminderKind
from bot.models import Actor
from bot.reports.forms import PostmortemInput
from bot.reports.models import NewActionItem
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import declare, reply
from tests.harness import BotHarness

REVIEWS = {ReminderKind.PRELIMINARY_REVIEW, ReminderKind.FORMAL_REVIEW}


async def _reviews(harness: BotHarness, incident_id: str) -> set[str]:
    reminders = await harness.services.escalation.reminders_for(incident_id)
    return {r.kind for r in reminders if r.kind in REVIEWS}


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_a_drill_plans_no_reviews_and_its_action_items_stay_off_the_home(
    make_harness: HarnessFactory, store: str
) -> None:
    """A resolved drill planned the "preliminary/formal review due" reminders (sent marked
    [DRILL] a day and a week later), and its postmortem's action items were listed on the
    owner's App Home among the real ones, unmarked."""
    harness = await make_harness(store)
    answer = await reply(harness, "drill P2 Search failover", user_id="U0ALICE")
    assert answer.startswith("[DRILL] Declared"), answer
    await harness.settle()
    [drill] = (await harness.services.incidents.list_page(drills=True)).incidents
    real = await declare(harness, "declare P2 Search is slow")
    for incident in (drill, real):
        await reply(harness, f"resolve {incident.id} done", user_id="U0ALICE")
    await harness.settle()

    assert await _reviews(harness, drill.id) == set()
    assert await _reviews(harness, real.id) == REVIEWS  # a real incident's stand

    due = datetime.now(UTC) + timedelta(days=3)
    for incident, text in ((drill, "Practise the failover again"), (real, "Add index check")):
        await harness.services.postmortems.save_postmortem(
            incident.id,
            Actor("U0ALICE"),
            PostmortemInput(action_items=[NewActionItem(text, "U0BOB", due)]),
        )
    home = await harness.services.home.home("U0BOB")
    assert [item.text for item in home.action_items] == ["Add index check"]
    assert home.action_items_total == 1
    # Still the drill's own to see and close (README: `/incident actions <drill ID>`).
    await harness.command(f"actions {drill.id}", user_id="U0BOB")
    [listed] = await harness.replies()
    assert "Practise the failover again" in str(listed["blocks"])
