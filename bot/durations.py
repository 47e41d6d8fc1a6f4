"""Durations as users write them in the policy: `90`, `15m`, `2h`, `1d`, `1w`, `1bd`.

`bd` is business days; what a business day is comes from the policy's calendar, so a
business-day duration is kept apart from plain seconds until it meets a calendar.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

# The longest duration a policy may set (business days counted as days): a year is longer than
# any response time, review or reminder, and a date that far ahead still fits a datetime.
MAX_CONFIGURED = timedelta(days=366)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# ASCII only: `\d` and int()/float() also read any script's digits ('１２' as 12, '١٢' too),
# and IGNORECASE alone matches 'ſ' (long s) as s and the Kelvin sign as k.
_PATTERN = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(s|m|h|d|w|bd)?\s*$", re.IGNORECASE | re.ASCII)


@dataclass(frozen=True, slots=True)
class Duration:
    """A span of time: plain seconds, or a whole number of business days (written with
    ASCII digits: `１２` is refused, not read as 12 s)."""

    seconds: float = 0.0
    business_days: int = 0

    @classmethod
    def parse(cls, value: Any) -> Duration:
        if isinstance(value, Duration):
            return value
        if isinstance(value, bool):
            raise ValueError(f"invalid duration {value!r}")
        if isinstance(value, int | float):
            if value < 0:
                raise ValueError(f"invalid duration '{value}': must not be negative")
            return cls(seconds=float(value))
        if not isinstance(value, str):
            raise ValueError(f"invalid duration {value!r}")
        match = _PATTERN.match(value)
        if not match and any(c.isdigit() and not c.isascii() for c in value):
            raise ValueError(f"invalid duration '{value}': write its digits as 0-9")
        if not match:
            raise ValueError(
                f"invalid duration '{value}' (use seconds like 90, or 15m, 2h, 1d, 1w, 1bd)"
            )
        number, unit = float(match.group(1)), (match.group(2) or "s").lower()
        if unit == "bd":
            if number != int(number):
                raise ValueError(f"invalid duration '{value}': business days must be whole")
            return cls(business_days=int(number))
        return cls(seconds=number * _UNITS[unit])

    @classmethod
    def _configured(cls, value: Any) -> Duration:
        """A duration of the policy: at most MAX_CONFIGURED. `.inf`, `.nan` or `1e6w` loaded
        (check-config said OK), then every declaration failed: a deadline past year 9999."""
        duration = cls.parse(value)
        limit = MAX_CONFIGURED.total_seconds()
        if (
            not math.isfinite(duration.seconds)
            or max(duration.seconds, duration.business_days * 86400.0) > limit
        ):
            raise ValueError(f"invalid duration '{value}': at most {MAX_CONFIGURED.days}d")
        return duration

    def as_timedelta(self) -> timedelta:
        """Clock time only; business days need a calendar (see bot.calendar)."""
        if self.business_days:
            raise ValueError("a business-day duration needs a calendar")
        return timedelta(seconds=self.seconds)

    @property
    def is_zero(self) -> bool:
        return self.seconds == 0 and self.business_days == 0

    def __str__(self) -> str:
        if self.business_days:
            return f"{self.business_days} business day" + ("s" if self.business_days > 1 else "")
        return humanize_seconds(self.seconds)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._configured,
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )


def humanize_seconds(seconds: float) -> str:
    """`5400` -> `1 h 30 min`: durations in words, as Slack readers expect."""
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    if days:
        parts.append(f"{days} d")
    if hours:
        parts.append(f"{hours} h")
    if minutes:
        parts.append(f"{minutes} min")
    if secs and not days and not hours:
        parts.append(f"{secs} s")
    return " ".join(parts)
