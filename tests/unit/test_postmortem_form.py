"""The postmortem form's input rules, on the values a submission carries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.policy import load_policy
from bot.policy.calendar import Calendar
from bot.reports.forms import PostmortemFormErrors, parse_postmortem_form

NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


def _row(owner: object) -> dict[str, object]:
    return {"item_0_text": "Add a pool alert", "item_0_owner": owner, "item_0_due": "2026-12-10"}


def test_an_enterprise_grid_person_may_own_an_action_item() -> None:
    """Slack's user picker gives W… IDs for people of an Enterprise Grid organisation: the
    form answered "Choose who owns it." with one chosen, and the item could not be saved."""
    calendar = load_policy(None).calendar
    form = parse_postmortem_form(_row("W0GRIDUSER"), calendar=calendar, now=NOW)
    assert [(item.text, item.owner) for item in form.action_items] == [
        ("Add a pool alert", "W0GRIDUSER")
    ]


@pytest.mark.parametrize("owner", [None, "", "S0SRE", "C0ROOM", "Ubad id", "U"])
def test_an_action_item_needs_a_person_as_its_owner(owner: object) -> None:
    calendar = load_policy(None).calendar
    with pytest.raises(PostmortemFormErrors) as refused:
        parse_postmortem_form(_row(owner), calendar=calendar, now=NOW)
    assert refused.value.errors == {"item_0_owner": "Choose who owns it."}


def test_a_detection_in_the_future_is_refused() -> None:
    """A start in the future was refused, a detection there was not: tomorrow's date picked
    by mistake made MTTD a day longer in every statistic."""
    calendar = load_policy(None).calendar
    earlier, later = int(NOW.timestamp()) - 3600, int(NOW.timestamp()) + 86400
    values = {"started_at": earlier, "detected_at": later}
    with pytest.raises(PostmortemFormErrors) as refused:
        parse_postmortem_form(values, calendar=calendar, now=NOW)
    assert refused.value.errors == {"detected_at": "Detection cannot be in the future."}
    values["detected_at"] = earlier + 600
    form = parse_postmortem_form(values, calendar=calendar, now=NOW)
    assert form.detected_at is not None and form.detected_at < NOW


def test_a_due_date_past_the_last_representable_day_is_refused_beside_its_field() -> None:
    """9999-12-31, 17:00 in Los Angeles is past the last moment Python can hold in UTC: the
    submission raised OverflowError before its ack (Slack: "trouble connecting"), saying
    nothing about the field."""
    calendar = Calendar(timezone="America/Los_Angeles")
    values = {**_row("U0BOB"), "item_0_due": "9999-12-31"}
    with pytest.raises(PostmortemFormErrors) as refused:
        parse_postmortem_form(values, calendar=calendar, now=NOW)
    assert refused.value.errors == {"item_0_due": "Choose a due date."}
