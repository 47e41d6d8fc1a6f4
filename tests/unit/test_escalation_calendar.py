"""Business time on the working calendar: weekends, holidays, starts outside hours, zones."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.durations import Duration
from bot.policy import Calendar
from bot.reminders.calendar import (
    add_business_days,
    add_business_time,
    due_after,
    is_working_day,
    working_day_seconds,
)

LONDON = ZoneInfo("Europe/London")
CALENDAR = Calendar(
    timezone="Europe/London",
    working_days=["mon", "tue", "wed", "thu", "fri"],
    working_hours="09:00-17:00",
    holidays=[date(2026, 12, 25)],
)


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("start", "due", "why"),
    [
        (london(2026, 11, 27, 16), london(2026, 11, 30, 16), "Friday afternoon skips the weekend"),
        (london(2026, 11, 25, 10), london(2026, 11, 26, 10), "midweek: the next day, same time"),
        (london(2026, 11, 28, 10), london(2026, 11, 30, 17), "Saturday counts from Monday 09:00"),
        (london(2026, 11, 29, 23), london(2026, 11, 30, 17), "Sunday night too"),
        (london(2026, 11, 30, 7), london(2026, 11, 30, 17), "before opening: that day's hours"),
        (london(2026, 11, 27, 18), london(2026, 11, 30, 17), "after Friday's closing"),
        (london(2026, 11, 27, 9), london(2026, 11, 27, 17), "a whole day from the opening"),
        (london(2026, 12, 24, 16), london(2026, 12, 28, 16), "the Christmas holiday is skipped"),
    ],
)
def test_one_business_day(start: datetime, due: datetime, why: str) -> None:
    assert add_business_days(start, 1, CALENDAR) == due, why


def test_result_is_utc_and_follows_daylight_saving() -> None:
    # Clocks go forward on Sunday 2027-03-28: Monday 16:00 in London is 15:00 UTC.
    due = add_business_days(london(2027, 3, 26, 16), 1, CALENDAR)
    assert due.tzinfo == UTC
    assert due == datetime(2027, 3, 29, 15, tzinfo=UTC)


def test_several_business_days_and_partial_days() -> None:
    assert add_business_days(london(2026, 11, 25, 10), 3, CALENDAR) == london(2026, 11, 30, 10)
    # 4 working hours from Friday 15:00: 2 on Friday, 2 on Monday.
    assert add_business_time(london(2026, 11, 27, 15), 4 * 3600, CALENDAR) == london(
        2026, 11, 30, 11
    )
    # No time at all, out of hours, is the next opening.
    assert add_business_time(london(2026, 11, 28, 12), 0, CALENDAR) == london(2026, 11, 30, 9)


def test_other_working_weeks_and_zones() -> None:
    sunday_to_thursday = Calendar(
        timezone="Asia/Dubai", working_days=["sun", "mon", "tue", "wed", "thu"]
    )
    dubai = ZoneInfo("Asia/Dubai")
    thursday = datetime(2026, 11, 26, 16, tzinfo=dubai)
    assert add_business_days(thursday, 1, sunday_to_thursday) == datetime(
        2026, 11, 29, 16, tzinfo=dubai
    )
    new_york = Calendar(timezone="America/New_York", working_hours="08:30-16:30")
    friday_late_utc = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)  # 16:00 in New York
    assert add_business_days(friday_late_utc, 1, new_york) == datetime(
        2026, 11, 30, 21, 0, tzinfo=UTC
    )
    assert working_day_seconds(new_york) == 8 * 3600


def test_due_after_uses_the_calendar_only_for_business_days() -> None:
    friday = london(2026, 11, 27, 16)
    assert due_after(friday, Duration.parse("30m"), CALENDAR) == london(2026, 11, 27, 16, 30)
    assert due_after(friday, Duration.parse("1w"), CALENDAR) == london(2026, 12, 4, 16)
    assert due_after(friday, Duration.parse("1bd"), CALENDAR) == london(2026, 11, 30, 16)


def test_working_days_and_negative_time() -> None:
    assert is_working_day(date(2026, 11, 27), CALENDAR)
    assert not is_working_day(date(2026, 11, 28), CALENDAR)
    assert not is_working_day(date(2026, 12, 25), CALENDAR)
    with pytest.raises(ValueError, match="negative"):
        add_business_time(london(2026, 11, 27, 10), -1, CALENDAR)
