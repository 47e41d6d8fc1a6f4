"""Command arguments as pydantic models: what a listener hands to the incident service."""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.models import IncidentRole, Severity, Status

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


MESSAGE_MAX = 2000  # a status update, a note or a resolution: one section of a message
IMPACT_MAX = 1000
INCIDENT_ID = re.compile(r"^INC-\d{8}-\d{3,}$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


class IncidentTarget(BaseModel):
    """A command about one incident: its ID, or None for "the incident of this channel"."""

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    incident_id: str | None = None

    @field_validator("incident_id", mode="before")
    @classmethod
    def _upper_id(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value


class UpdateStatus(IncidentTarget):
    """`/incident update [ID] <status> <message> [eta <duration>] [impact <text>]`."""

    status: Status
    message: str = Field(min_length=1, max_length=MESSAGE_MAX)
    eta: timedelta | None = None
    impact: str | None = Field(default=None, min_length=1, max_length=IMPACT_MAX)


class ChangeSeverity(IncidentTarget):
    """`/incident severity [ID] <P0|P1|P2|P3>`."""

    severity: Severity

    @field_validator("severity", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value


class AssignRole(IncidentTarget):
    """`/incident assign [ID] <role> <@user>`."""

    role: IncidentRole
    user_id: str = Field(pattern=_USER_ID.pattern)


class AddNote(IncidentTarget):
    """`/incident note [ID] <text>`."""

    text: str = Field(min_length=1, max_length=MESSAGE_MAX)


class ResolveIncident(IncidentTarget):
    """`/incident resolve [ID] <summary>`."""

    summary: str = Field(min_length=1, max_length=MESSAGE_MAX)


class ReopenIncident(IncidentTarget):
    """`/incident reopen [ID] [reason]`."""

    reason: str = Field(default="", max_length=MESSAGE_MAX)


class ListIncidents(BaseModel):
    """`/incident list [open|all]`."""

    model_config = ConfigDict(frozen=True)

    open_only: bool = True
