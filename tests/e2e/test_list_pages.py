"""`/incident list` pages, and says how many more there are and how to see them (7.4)."""

from __future__ import annotations

from bot.incidents.schemas import DeclareIncident
from bot.models import Actor
from tests.harness import BotHarness


async def test_list_all_pages_and_says_how_many_more(harness: BotHarness) -> None:
    for number in range(53):
        await harness.services.incidents.declare(
            DeclareIncident(severity="P3", title=f"Incident {number}"), Actor("U0ALICE")
        )
    page_one = await harness.command("list all")
    assert page_one.status == 200
    [first] = await harness.replies()
    assert first["text"] == "Incidents (53), page 1 of 2"
    shown = str(first["blocks"])
    assert "Incident 52" in shown and "Incident 3 " in shown and "Incident 2 " not in shown
    assert first["blocks"][-1]["elements"][0]["text"] == ("3 more: `/incident list all page 2`.")
    await harness.command("list all page 2")
    [second] = await harness.replies()
    assert second["text"] == "Incidents (53), page 2 of 2"
    assert all(f"Incident {n} " in str(second["blocks"]) for n in (0, 1, 2))
    assert "more:" not in str(second["blocks"])
    await harness.command("list all page 9")
    [past] = await harness.replies()
    assert "Page 9 is past the end: 53 incidents make 2 pages" in str(past["blocks"])


async def test_a_page_past_the_end_of_one_incident_counts_it_in_the_singular(
    harness: BotHarness,
) -> None:
    await harness.services.incidents.declare(
        DeclareIncident(severity="P3", title="Typo"), Actor("U0ALICE")
    )
    await harness.command("list page 3")
    [past] = await harness.replies()
    assert "Page 3 is past the end: 1 incident makes 1 page." in str(
        past["blocks"]
    )  # not "1 incidents"
