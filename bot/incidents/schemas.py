"""Command arguments as pydantic models: what a listener hands to the incident service."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from bot.models import IncidentRole, Severity, Status
from bot.slack_ids import USER_ID
from bot.text import forbidden_character, is_invisible, normalize_newlines

TITLE_MAX = 150  # Slack's header block limit; the title heads every incident message
MESSAGE_MAX = 2000  # a status update, a note or a resolution: one section of a message
IMPACT_MAX = 1000
SERVICE_NAME_MAX = 100
SERVICES_MAX = 20
# The whole text of one slash command: room for a message, an impact and the keywords.
COMMAND_TEXT_MAX = 4000
# Errors raised here carry a whole sentence for the user (parsing shows it as it is).
USER_TEXT_ERROR = "user_text"


def _user_text(what: str, *, multiline: bool, required: bool = True) -> AfterValidator:
    """A validator refusing control characters and bidi overrides (and, for a required
    text, one made only of invisible characters); `what` names the text in the message."""

    def check(value: str) -> str:
        problem = forbidden_character(value, multiline=multiline)
        if problem is not None:
            raise PydanticCustomError(
                USER_TEXT_ERROR, "{message}", {"message": f"The {what} contains {problem}."}
            )
        if required and value and is_invisible(value):
            raise PydanticCustomError(
                USER_TEXT_ERROR,
                "{message}",
                {"message": f"The {what} is made only of invisible characters; write it out."},
            )
        return value

    return AfterValidator(check)


def _lines(value: object) -> object:
    return normalize_newlines(value) if isinstance(value, str) else value


Title = Annotated[str, _user_text("title", multiline=False)]
Message = Annotated[str, BeforeValidator(_lines), _user_text("message", multiline=True)]
NoteText = Annotated[str, BeforeValidator(_lines), _user_text("note", multiline=True)]
Summary = Annotated[str, BeforeValidator(_lines), _user_text("summary", multiline=True)]
Impact = Annotated[str, BeforeValidator(_lines), _user_text("impact", multiline=True)]
Reason = Annotated[
    str, BeforeValidator(_lines), _user_text("reason", multiline=True, required=False)
]
ServiceName = Annotated[
    str, Field(max_length=SERVICE_NAME_MAX), _user_text("service name", multiline=False)
]
CommandText = Annotated[str, _user_text("command", multiline=True, required=False)]


class SlashCommand(BaseModel):
    """The whole text of a slash command, before it is split into its arguments."""

    model_config = ConfigDict(frozen=True)

    text: CommandText = Field(max_length=COMMAND_TEXT_MAX)


class DeclareIncident(BaseModel):
    """`/incident declare <P0|P1|P2|P3> <title>` (or the declaration modal)."""

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    severity: Severity
    title: Title = Field(min_length=1, max_length=TITLE_MAX)
    impact: Impact = Field(default="", max_length=IMPACT_MAX)
    services: tuple[ServiceName, ...] = Field(default=(), max_length=SERVICES_MAX)
    drill: bool = False  # a practice incident (`/incident drill`); its title is the scenario

    @field_validator("severity", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value


INCIDENT_ID = re.compile(r"^INC-[0-9]{8}-[0-9]{3,}$")  # ASCII digits (\d takes any script's)


class IncidentTarget(BaseModel):
    """A command about one incident: its ID, or None for "the incident of this channel"."""

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    incident_id: str | None = None

    @field_validator("incident_id", mode="before")
    @classmethod
    def _upper_id(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value


# The value of the update form's "Publish to the status page" checkbox.
PUBLISH_OPTION = "publish"


class PublishIncident(IncidentTarget):
    """`/incident publish`: the incident and its updates so far, or (`update`, numbered as
    `/incident unpublish` numbers them) one withdrawn status update put back."""

    update: int | None = Field(default=None, ge=1)


class UnpublishIncident(IncidentTarget):
    """`/incident unpublish`: the whole incident, one status update (`update`, counted from
    1 in the order they were posted), or the newest published one (`last`)."""

    update: int | None = Field(default=None, ge=1)
    last: bool = False


class UpdateStatus(IncidentTarget):
    """`/incident update [ID] <status> <message> [eta <duration>] [impact <text>]`."""

    status: Status
    message: Message = Field(min_length=1, max_length=MESSAGE_MAX)
    eta: timedelta | None = None
    impact: Impact | None = Field(default=None, min_length=1, max_length=IMPACT_MAX)
    # The update form's "Publish to the status page" box (the typed command: /incident publish).
    publish: bool = False
    # The form's status was left as it showed it: a later one reached since it opened stands.
    status_untouched: bool = False


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
    user_id: str = Field(pattern=f"^{USER_ID.pattern}$")


class AddNote(IncidentTarget):
    """`/incident note [ID] <text>`."""

    text: NoteText = Field(min_length=1, max_length=MESSAGE_MAX)


class ResolveIncident(IncidentTarget):
    """`/incident resolve [ID] <summary>`."""

    summary: Summary = Field(min_length=1, max_length=MESSAGE_MAX)


class ReopenIncident(IncidentTarget):
    """`/incident reopen [ID] [reason]`."""

    reason: Reason = Field(default="", max_length=MESSAGE_MAX)


class EscalateIncident(IncidentTarget):
    """`/incident escalate [ID] [reason]`."""

    reason: Reason = Field(default="", max_length=MESSAGE_MAX)


LIST_PAGE_SIZE = 50  # incidents a page of `/incident list`: one message holds them
LIST_PAGE_MAX = 10_000


class ListIncidents(BaseModel):
    """`/incident list [open|all|drills] [page N]`."""

    model_config = ConfigDict(frozen=True)

    open_only: bool = True
    drills: bool = False
    page: int = Field(default=1, ge=1, le=LIST_PAGE_MAX)
