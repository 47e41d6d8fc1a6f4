"""Command arguments as pydantic models: what a listener hands to the incident service."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.models import Severity

TITLE_MAX = 150  # Slack's header block limit; the title heads every incident message


class DeclareIncident(BaseModel):
    """`/incident declare <P0|P1|P2|P3> <title>` (or the declaration modal)."""

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    severity: Severity
    title: str = Field(min_length=1, max_length=TITLE_MAX)
    impact: str = Field(default="", max_length=1000)
    services: tuple[str, ...] = ()

    @field_validator("severity", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value
