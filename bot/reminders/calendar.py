"""Business time on the policy's working calendar.

A target given in business days (P3's `ack_within: 1bd`) only counts working time: the
configured working hours on working days, in the calendar's time zone, minus holidays.
One business day is one working day's worth of working hours, so an incident declared on
Friday at 16:00 with 8-hour days is due on Monday at 16:00, and one declared on Saturday is
due when Monday's working hours end.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from bot.durations import Duration
from bot.policy import Calendar

# Enough for any real calendar: a gap longer than this means there are no working days.
_MAX_DAYS_SCANNED = 3660


def is_working_day(day: date, calendar: Calendar) -> bool:
    """True when `day` (a local date) is a working weekday and not a holiday."""
    return day.weekday() in calendar.weekday_numbers and day not in set(calendar.holidays)


def working_day_seconds(calendar: Calendar) -> float:
    """Length of one working day, from the working hours (wall-clock time)."""
    start, end = calendar.day_start, calendar.day_end
    return float((end.hour * 3600 + end.minute * 60) - (start.hour * 3600 + start.minute * 60))


def working_periods(start: datetime, calendar: Calendar) -> Iterator[tuple[datetime, datetime]]:
    """Working periods (UTC open, UTC close) from the local day of `start` onwards.

    Each day's hours are placed in the calendar's zone, so daylight-saving changes move the
    UTC times, not the local ones. Stops with ValueError if no working day exists.
    """
    zone = calendar.zone
    holidays = set(calendar.holidays)
    weekdays = calendar.weekday_numbers
    day = start.astimezone(zone).date()
    for _ in range(_MAX_DAYS_SCANNED):
        if day.weekday() in weekdays and day not in holidays:
            opens = datetime.combine(day, calendar.day_start, tzinfo=zone).astimezone(UTC)
            closes = datetime.combine(day, calendar.day_end, tzinfo=zone).astimezone(UTC)
            yield opens, closes
        day += timedelta(days=1)
    raise ValueError("the working calendar has no working day in ten years")


def add_business_time(start: datetime, seconds: float, calendar: Calendar) -> datetime:
    """`start` plus `seconds` of working time; the result is in UTC.

    A start outside working hours counts from the next opening. Time that ends exactly at
    a closing returns that closing (due "by the end of the working day").
    """
    if seconds < 0:
        raise ValueError("business time must not be negative")
    start = start.astimezone(UTC)
    remaining = float(seconds)
    for opens, closes in working_periods(start, calendar):
        begin = max(opens, start)
        if begin >= closes:
            continue  # the start is after this day's closing
        available = (closes - begin).total_seconds()
        if remaining <= available:
            return begin + timedelta(seconds=remaining)
        remaining -= available
    raise AssertionError("working_periods never ends without raising")  # pragma: no cover


def add_business_days(start: datetime, days: int, calendar: Calendar) -> datetime:
    """`start` plus `days` working days (each one working day's worth of hours)."""
    return add_business_time(start, days * working_day_seconds(calendar), calendar)


def due_after(start: datetime, duration: Duration, calendar: Calendar) -> datetime:
    """When a target of `duration` counted from `start` falls due.

    Clock-time durations (`30m`, `4h`, `1w`) ignore the calendar: an outage is urgent at
    night too. Business-day durations (`1bd`) count working time only.
    """
    if duration.business_days:
        return add_business_days(start, duration.business_days, calendar)
    return start + duration.as_timedelta()
