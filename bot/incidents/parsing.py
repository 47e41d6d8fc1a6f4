"""Slash-command text -> command models. Errors are UsageError naming what was wrong."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from bot.durations import Duration, humanize_seconds
from bot.errors import UsageError
from bot.incidents.schemas import (
    IMPACT_MAX,
    INCIDENT_ID,
    MESSAGE_MAX,
    TITLE_MAX,
    AddNote,
    AssignRole,
    ChangeSeverity,
    DeclareIncident,
    IncidentTarget,
    ListIncidents,
    ReopenIncident,
    ResolveIncident,
    UpdateStatus,
)
from bot.models import IncidentRole, Severity, Status

SEVERITIES = ", ".join(s.value for s in Severity)


def split_subcommand(text: str) -> tuple[str, str]:
    """`declare P1 API down` -> (`declare`, `P1 API down`); empty text -> (`help`, ``)."""
    stripped = (text or "").strip()
    if not stripped:
        return "help", ""
    head, _, rest = stripped.partition(" ")
    return head.lower(), rest.strip()


def parse_declare(rest: str) -> DeclareIncident:
    severity, _, title = rest.strip().partition(" ")
    if not severity:
        raise UsageError("Give a severity and a title.")
    if severity.upper() not in Severity.__members__:
        raise UsageError(f"'{severity}' is not a severity; use one of {SEVERITIES}.")
    title = " ".join(title.split())
    if not title:
        raise UsageError("Give the incident a title after the severity.")
    if len(title) > TITLE_MAX:
        raise UsageError(f"The title is {len(title)} characters long; keep it to {TITLE_MAX}.")
    try:
        return DeclareIncident(severity=severity, title=title)
    except ValidationError as exc:
        raise UsageError(exc.errors()[0]["msg"]) from None


def words(rest: str) -> list[str]:
    """Split arguments like a shell would, but never fail on a stray quote."""
    try:
        return shlex.split(rest)
    except ValueError:
        return rest.split()


# -- lifecycle commands -------------------------------------------------------------------

STATUSES = ", ".join(s.value for s in Status)
ROLES = ", ".join(r.value for r in IncidentRole)
_ROLE_ALIASES = {
    "commander": IncidentRole.COMMANDER,
    "ic": IncidentRole.COMMANDER,
    "incident-commander": IncidentRole.COMMANDER,
    "tech-lead": IncidentRole.TECH_LEAD,
    "techlead": IncidentRole.TECH_LEAD,
    "technical-lead": IncidentRole.TECH_LEAD,
    "comms-lead": IncidentRole.COMMS_LEAD,
    "commslead": IncidentRole.COMMS_LEAD,
    "comms": IncidentRole.COMMS_LEAD,
    "communications-lead": IncidentRole.COMMS_LEAD,
    "sme": IncidentRole.SME,
    "expert": IncidentRole.SME,
}
# What an escaped mention looks like in slash-command text: <@U123> or <@U123|name>.
_MENTION = re.compile(r"^<@([UW][A-Z0-9]{2,})(?:\|[^>]*)?>$")
_BARE_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
# A first word that was meant as an incident ID (INC- and a digit) even when mistyped.
_LOOKS_LIKE_ID = re.compile(r"^inc-\d", re.IGNORECASE)

M = TypeVar("M", bound=BaseModel)


def _build(model: type[M], **fields: Any) -> M:
    """Validate into `model`; a validation failure becomes a UsageError with pydantic's words."""
    try:
        return model(**fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise UsageError(f"{where}: {error['msg']}") from None


def take_incident_id(rest: str) -> tuple[str | None, str]:
    """Split a leading incident ID off the arguments: (`INC-...` or None, the rest).

    A first word like `INC-2026` that is not a whole ID is refused rather than taken as text,
    so a typo in the ID is never recorded as part of a note.
    """
    head, _, tail = (rest or "").strip().partition(" ")
    if not _LOOKS_LIKE_ID.match(head):
        return None, (rest or "").strip()
    if not INCIDENT_ID.match(head.upper()):
        raise UsageError(f"'{head}' is not an incident ID; they look like INC-20261127-001.")
    return head.upper(), tail.strip()


def parse_target(rest: str, command: str) -> IncidentTarget:
    """`ack`, `show`, `timeline`, `warroom`: an optional incident ID and nothing else."""
    incident_id, tail = take_incident_id(rest)
    if tail:
        raise UsageError(f"`/incident {command}` takes only an incident ID, not '{tail}'.")
    return IncidentTarget(incident_id=incident_id)


def parse_duration(text: str) -> timedelta:
    """An ETA like `30m`, `2h`, `1d` or seconds; refused with a clear message otherwise."""
    try:
        duration = Duration.parse(text)
    except ValueError:
        raise UsageError(f"'{text}' is not a duration; use 30m, 2h or 1d.") from None
    if duration.business_days:
        raise UsageError("Give the ETA in clock time (30m, 2h, 1d), not business days.")
    if duration.is_zero:
        raise UsageError("An ETA must be later than now; give a duration like 30m.")
    return duration.as_timedelta()


def _keyword(token: str) -> str | None:
    word = token.lower().rstrip(":")
    return word if word in ("eta", "impact") else None


def _is_duration(token: str) -> bool:
    try:
        parse_duration(token)
    except UsageError:
        return False
    return True


def _options(tokens: Sequence[str]) -> tuple[timedelta | None, str | None] | None:
    """Parse `eta <duration>` and `impact <text>` clauses covering all of `tokens`.

    None means "these words are not options" (they stay part of the message). A clause that
    is clearly meant as one but is wrong (`... eta soon` at the very end) raises UsageError.
    """
    eta: timedelta | None = None
    impact: str | None = None
    count = len(tokens)
    index = 0
    while index < count:
        keyword = _keyword(tokens[index])
        if keyword == "eta":
            if eta is not None:
                raise UsageError("Give `eta` once.")
            if index + 1 >= count:
                raise UsageError("Give a duration after `eta`, like `eta 30m`.")
            clearly_an_option = index + 2 >= count or _keyword(tokens[index + 2]) is not None
            if not _is_duration(tokens[index + 1]) and not clearly_an_option:
                return None  # "the eta is unclear": words, not an option
            eta = parse_duration(tokens[index + 1])
            index += 2
        elif keyword == "impact":
            if impact is not None:
                raise UsageError("Give `impact` once.")
            end = index + 1
            # The impact runs to the end, or to a closing `eta <duration>`.
            while end < count and not (
                _keyword(tokens[end]) == "eta" and (end + 2 == count or end + 1 == count)
            ):
                end += 1
            impact = " ".join(tokens[index + 1 : end])
            if not impact:
                raise UsageError("Describe the impact after `impact`.")
            index = end
        elif eta is not None or impact is not None:
            raise UsageError("Put `eta` and `impact` after the message, at the end.")
        else:
            return None
    return eta, impact


def parse_update(rest: str) -> UpdateStatus:
    """`[ID] <status> <message> [eta <duration>] [impact <text>]`, options in either order."""
    incident_id, tail = take_incident_id(rest)
    tokens = tail.split()
    if not tokens:
        raise UsageError("Give a status and a message.")
    status = tokens[0].lower()
    if status not in Status.__members__.values():
        raise UsageError(f"'{tokens[0]}' is not a status; use one of {STATUSES}.")
    words_ = tokens[1:]
    message_words, eta, impact = words_, None, None
    # The message is at least one word; the first place where the rest parses as options
    # ends it.
    for start in range(1, len(words_)):
        if _keyword(words_[start]) is None:
            continue
        options = _options(words_[start:])
        if options is not None:
            message_words, (eta, impact) = words_[:start], options
            break
    message = " ".join(message_words)
    if not message:
        raise UsageError("Say what is happening after the status.")
    _check_length("message", message, MESSAGE_MAX)
    if impact is not None:
        _check_length("impact", impact, IMPACT_MAX)
    return _build(
        UpdateStatus,
        incident_id=incident_id,
        status=status,
        message=message,
        eta=eta,
        impact=impact,
    )


def _check_length(what: str, text: str, limit: int) -> None:
    if len(text) > limit:
        raise UsageError(f"The {what} is {len(text)} characters long; keep it to {limit}.")


def parse_severity(rest: str) -> ChangeSeverity:
    incident_id, tail = take_incident_id(rest)
    if not tail:
        raise UsageError("Give the new severity.")
    if tail.upper() not in Severity.__members__:
        raise UsageError(f"'{tail}' is not a severity; use one of {SEVERITIES}.")
    return _build(ChangeSeverity, incident_id=incident_id, severity=tail)


def parse_mention(token: str) -> str:
    """The user ID in `<@U123>`, `<@U123|name>` (or a bare `U123`)."""
    match = _MENTION.match(token)
    if match:
        return match.group(1)
    if _BARE_USER_ID.match(token):
        return token
    if token.startswith("@"):
        # Slack sends @name as plain text when the command does not escape mentions.
        raise UsageError(
            f"I received '{token}' as plain text, not as a mention. Pick the person from "
            "Slack's @ suggestions so that their ID comes through."
        )
    raise UsageError(f"'{token}' is not a mention of a person; mention them like @alice.")


def parse_role(word: str) -> IncidentRole:
    role = _ROLE_ALIASES.get(word.lower().replace("_", "-"))
    if role is None:
        raise UsageError(f"'{word}' is not a role; use one of {ROLES}.")
    return role


def parse_assign(rest: str) -> AssignRole:
    """`[ID] <role> <@user>` (the mention may also come first)."""
    incident_id, tail = take_incident_id(rest)
    tokens = tail.split()
    if len(tokens) != 2:
        raise UsageError("Give a role and one person.")
    first, second = tokens
    # Mentions start with "<@" or "@"; accept them on either side of the role.
    role_word, person = (second, first) if first.startswith(("<@", "@")) else (first, second)
    return _build(
        AssignRole,
        incident_id=incident_id,
        role=parse_role(role_word),
        user_id=parse_mention(person),
    )


def parse_note(rest: str) -> AddNote:
    incident_id, tail = take_incident_id(rest)
    if not tail:
        raise UsageError("Give the text of the note.")
    _check_length("note", tail, MESSAGE_MAX)
    return _build(AddNote, incident_id=incident_id, text=tail)


def parse_resolve(rest: str) -> ResolveIncident:
    incident_id, tail = take_incident_id(rest)
    if not tail:
        raise UsageError("Give a short summary of the resolution.")
    _check_length("summary", tail, MESSAGE_MAX)
    return _build(ResolveIncident, incident_id=incident_id, summary=tail)


def parse_reopen(rest: str) -> ReopenIncident:
    incident_id, tail = take_incident_id(rest)
    _check_length("reason", tail, MESSAGE_MAX)
    return _build(ReopenIncident, incident_id=incident_id, reason=tail)


def parse_list(rest: str) -> ListIncidents:
    word = rest.strip().lower()
    if word in ("", "open"):
        return ListIncidents(open_only=True)
    if word == "all":
        return ListIncidents(open_only=False)
    raise UsageError(f"'{rest.strip()}' is not a filter; use `open` or `all`.")


# -- modal forms --------------------------------------------------------------------------


class FormErrors(UsageError):
    """A modal's input was wrong: a message per field, shown beside the fields."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


FormValue = str | Sequence[str] | None


def _text(fields: Mapping[str, FormValue], name: str) -> str:
    value = fields.get(name)
    return " ".join(value.split()) if isinstance(value, str) else ""


def parse_declare_form(fields: Mapping[str, FormValue]) -> DeclareIncident:
    """The declaration modal: title, severity, impact, affected services."""
    errors: dict[str, str] = {}
    title = _text(fields, "title")
    severity = _text(fields, "severity").upper()
    impact = (fields.get("impact") or "") if isinstance(fields.get("impact"), str) else ""
    if not title:
        errors["title"] = "Give the incident a title."
    elif len(title) > TITLE_MAX:
        errors["title"] = f"Keep the title to {TITLE_MAX} characters (it has {len(title)})."
    if severity not in Severity.__members__:
        errors["severity"] = f"Pick a severity: {SEVERITIES}."
    if isinstance(impact, str) and len(impact.strip()) > IMPACT_MAX:
        errors["impact"] = f"Keep the impact to {IMPACT_MAX} characters."
    services = fields.get("services")
    if isinstance(services, str):
        names = [name.strip() for name in services.split(",")]
    else:
        names = [str(name).strip() for name in services or []]
    if errors:
        raise FormErrors(errors)
    return DeclareIncident(
        severity=severity,
        title=title,
        impact=impact.strip() if isinstance(impact, str) else "",
        services=tuple(dict.fromkeys(name for name in names if name)),
    )


def parse_update_form(incident_id: str, fields: Mapping[str, FormValue]) -> UpdateStatus:
    """The "Post update" modal: status, current status, ETA (a duration), impact."""
    errors: dict[str, str] = {}
    status = _text(fields, "status").lower()
    raw_message = fields.get("message")
    message = raw_message.strip() if isinstance(raw_message, str) else ""
    eta_text = _text(fields, "eta")
    raw_impact = fields.get("impact")
    impact = raw_impact.strip() if isinstance(raw_impact, str) else ""
    eta: timedelta | None = None
    if status not in Status.__members__.values():
        errors["status"] = f"Pick a status: {STATUSES}."
    if not message:
        errors["message"] = "Say what is happening and what is being done."
    elif len(message) > MESSAGE_MAX:
        errors["message"] = f"Keep it to {MESSAGE_MAX} characters (it has {len(message)})."
    if eta_text:
        try:
            eta = parse_duration(eta_text)
        except UsageError as exc:
            errors["eta"] = str(exc)
    if len(impact) > IMPACT_MAX:
        errors["impact"] = f"Keep the impact to {IMPACT_MAX} characters."
    if errors:
        raise FormErrors(errors)
    return UpdateStatus(
        incident_id=incident_id,
        status=status,
        message=message,
        eta=eta,
        impact=impact or None,
    )


def describe_eta(eta: timedelta) -> str:
    """`in 1 h 30 min`: how an ETA was given, kept in words beside the time it means."""
    return "in " + humanize_seconds(eta.total_seconds())
