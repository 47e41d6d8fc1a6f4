"""The policy's working calendar: the business days and hours that business-day targets
(P3's "1 business day") count in."""

from __future__ import annotations

import re
from datetime import date, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from bot.schema import Strict

_WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class Calendar(Strict):
    """Working calendar for business-day targets (P3's "1 business day")."""

    timezone: str = "UTC"
    working_days: list[str] = Field(default_factory=lambda: _WEEKDAYS[:5])
    working_hours: str = "09:00-17:00"
    holidays: list[date] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}'") from None
        return value

    @field_validator("working_days")
    @classmethod
    def _weekdays(cls, value: list[str]) -> list[str]:
        days = [day.lower()[:3] for day in value]
        for day in days:
            if day not in _WEEKDAYS:
                raise ValueError(f"unknown weekday '{day}' (use mon, tue, ... sun)")
        if not days:
            raise ValueError("at least one working day is needed")
        return days

    @field_validator("working_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        match = re.fullmatch(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", value.strip())
        if not match:
            raise ValueError(f"invalid working hours '{value}' (use HH:MM-HH:MM)")
        start = time(int(match.group(1)), int(match.group(2)))
        end = time(int(match.group(3)), int(match.group(4)))
        if start >= end:
            raise ValueError(f"invalid working hours '{value}': start must be before end")
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def weekday_numbers(self) -> set[int]:
        return {_WEEKDAYS.index(day) for day in self.working_days}

    @property
    def day_start(self) -> time:
        start, _ = self.working_hours.split("-")
        return time.fromisoformat(start.strip().zfill(5))

    @property
    def day_end(self) -> time:
        _, end = self.working_hours.split("-")
        return time.fromisoformat(end.strip().zfill(5))
