"""Slash-command text -> command models: declare and drill, and the lifecycle commands but
`update` (bot.incidents.update_parsing). Errors are UsageError naming what was wrong."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from bot.catalog import NO_SERVICES
from bot.errors import UsageError
from bot.incidents.schemas import (
    COMMAND_TEXT_MAX,
    INCIDENT_ID,
    LIST_PAGE_MAX,
    MESSAGE_MAX,
    TITLE_MAX,
    USER_TEXT_ERROR,
    AddNote,
    AssignRole,
    ChangeSeverity,
    DeclareIncident,
    EscalateIncident,
    IncidentTarget,
    ListIncidents,
    PublishIncident,
    ReopenIncident,
    ResolveIncident,
    SlashCommand,
    UnpublishIncident,
)
from bot.models import IncidentRole, Severity
from bot.slack_ids import USER_ID, is_user_id

SEVERITIES = ", ".join(s.value for s in Severity)


def check_command(text: str) -> str:
    """A slash command's whole text (any command's), checked before anything else reads it.

    Its length is bounded (COMMAND_TEXT_MAX) and it may hold no control character or bidi
    override, so no argument of any command can be longer or stranger than this.
    """
    if len(text) > COMMAND_TEXT_MAX:
        raise UsageError(
            f"That command is {len(text):,} characters long; a command may be at most "
            f"{COMMAND_TEXT_MAX:,}. Shorten it, or put the longer parts in notes."
        )
    _build(SlashCommand, text=text)
    return text


def parse_command(text: str) -> tuple[str, str]:
    """`/incident`'s text, checked (check_command), then split into subcommand and rest."""
    return split_subcommand(check_command(text))


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
        raise UsageError(f"'{_quote(severity)}' is not a severity; use one of {SEVERITIES}.")
    title = " ".join(title.split())
    if not title:
        raise UsageError("Give the incident a title after the severity.")
    _check_length("title", title, TITLE_MAX)
    return _build(DeclareIncident, severity=severity, title=title)


# A drill's service, named in its scenario: `checkout: database failover` (the first word,
# when the catalog knows it) or `service=checkout` anywhere.
_SERVICE_OPTION = re.compile(r"^service=(\S+)$", re.IGNORECASE)
_SERVICE_LEAD = re.compile(r"^([A-Za-z0-9][\w.-]*):$")


def parse_drill(rest: str, catalog: Sequence[str]) -> DeclareIncident:
    """`<P0|P1|P2|P3> [<service>:] <scenario> [service=<name>]`: a drill to declare.

    The scenario becomes the title (whole, `checkout:` included). A leading `<name>:` names
    a service only when the catalog (`catalog`) has it; `service=<name>` must name one.
    """
    severity, _, scenario = rest.strip().partition(" ")
    if not severity:
        raise UsageError("Give a severity and a scenario.")
    if severity.upper() not in Severity.__members__:
        raise UsageError(f"'{_quote(severity)}' is not a severity; use one of {SEVERITIES}.")
    known = {name.lower() for name in catalog}
    services: list[str] = []
    kept: list[str] = []
    for word in scenario.split():
        option = _SERVICE_OPTION.match(word)
        if option is None:
            kept.append(word)
            continue
        name = option.group(1).lower()
        if name not in known:
            names = ", ".join(sorted(known)) or NO_SERVICES
            raise UsageError(
                f"'{_quote(option.group(1))}' is not a service of the catalog. Services: {names}."
            )
        services.append(name)
    lead = _SERVICE_LEAD.match(kept[0]) if kept else None
    if lead is not None and lead.group(1).lower() in known:
        services.insert(0, lead.group(1).lower())
    title = " ".join(kept)
    if not title:
        raise UsageError("Describe the scenario after the severity.")
    _check_length("scenario", title, TITLE_MAX)
    return _build(
        DeclareIncident,
        severity=severity,
        title=title,
        services=tuple(dict.fromkeys(services)),
        drill=True,
    )


def words(rest: str) -> list[str]:
    """Split arguments like a shell would, but never fail on a stray quote."""
    try:
        return shlex.split(rest)
    except ValueError:
        return rest.split()


# -- lifecycle commands -------------------------------------------------------------------

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
_MENTION = re.compile(rf"^<@({USER_ID.pattern})(?:\|[^>]*)?>$")
# A first word that was meant as an incident ID (INC- and a digit) even when mistyped.
_LOOKS_LIKE_ID = re.compile(r"^inc-\d", re.IGNORECASE)

M = TypeVar("M", bound=BaseModel)


def _build(model: type[M], **fields: Any) -> M:
    """Validate into `model`; a validation failure becomes a UsageError with pydantic's words."""
    try:
        return model(**fields)
    except ValidationError as exc:
        raise UsageError(pydantic_problem(exc.errors()[0])) from None


def pydantic_problem(error: Any) -> str:
    """One pydantic error as a sentence: ours are whole sentences already."""
    if error["type"] == USER_TEXT_ERROR:
        return str(error["msg"])
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}"


# How much of a refused word is quoted back: enough to recognise it.
QUOTE_MAX = 40


def _quote(word: str) -> str:
    return word if len(word) <= QUOTE_MAX else word[: QUOTE_MAX - 1] + "…"


def take_incident_id(rest: str) -> tuple[str | None, str]:
    """Split a leading incident ID off the arguments: (`INC-...` or None, the rest).

    A first word like `INC-2026` that is not a whole ID is refused rather than taken as text,
    so a typo in the ID is never recorded as part of a note.
    """
    head, _, tail = (rest or "").strip().partition(" ")
    if not _LOOKS_LIKE_ID.match(head):
        return None, (rest or "").strip()
    if not INCIDENT_ID.match(head.upper()):
        raise UsageError(
            f"'{_quote(head)}' is not an incident ID; they look like INC-20261127-001."
        )
    return head.upper(), tail.strip()


def take_id_either_end(rest: str) -> tuple[str | None, str]:
    """An incident ID first or last (`severity P1 INC-...`, as the README writes it), for
    commands whose other arguments are single words that never look like one."""
    incident_id, tail = take_incident_id(rest)
    if incident_id is not None:
        return incident_id, tail
    head, _, last = tail.rpartition(" ")
    if head and _LOOKS_LIKE_ID.match(last):
        incident_id, _ = take_incident_id(last)
        return incident_id, head.strip()
    return None, tail


def parse_target(rest: str, command: str) -> IncidentTarget:
    """`ack`, `show`, `timeline`, `warroom`: an optional incident ID and nothing else."""
    incident_id, tail = take_incident_id(rest)
    if tail:
        raise UsageError(f"`/incident {command}` takes only an incident ID, not '{_quote(tail)}'.")
    return IncidentTarget(incident_id=incident_id)


# The largest update number taken: more digits than any incident has updates is a typo.
_UPDATE_NUMBER = re.compile(r"^[0-9]{1,6}$")


def _update_number(word: str) -> int:
    if not _UPDATE_NUMBER.match(word) or int(word) < 1:
        raise UsageError(f"'{_quote(word)}' is not an update number; the first update is 1.")
    return int(word)


def parse_publish(rest: str) -> PublishIncident:
    """`[ID]` or `[ID] update N`: the incident and its updates so far, or its Nth status
    update put back after a withdrawal."""
    incident_id, tail = take_incident_id(rest)
    words_ = tail.split()
    if not words_:
        return PublishIncident(incident_id=incident_id)
    if len(words_) == 2 and words_[0].lower() == "update":
        return PublishIncident(incident_id=incident_id, update=_update_number(words_[1]))
    raise UsageError(
        f"`/incident publish` takes an incident ID, then nothing or `update N`, not "
        f"'{_quote(tail)}'."
    )


def parse_unpublish(rest: str) -> UnpublishIncident:
    """`[ID]`, `[ID] last` or `[ID] update N`: the incident, its newest published update, or
    its Nth status update."""
    incident_id, tail = take_incident_id(rest)
    words_ = tail.split()
    if not words_:
        return UnpublishIncident(incident_id=incident_id)
    if [word.lower() for word in words_] in (["last"], ["update", "last"]):
        return UnpublishIncident(incident_id=incident_id, last=True)
    if len(words_) == 2 and words_[0].lower() == "update":
        return UnpublishIncident(incident_id=incident_id, update=_update_number(words_[1]))
    raise UsageError(
        f"`/incident unpublish` takes an incident ID, then `last` or `update N`, not "
        f"'{_quote(tail)}'."
    )


def _check_length(what: str, text: str, limit: int) -> None:
    if len(text) > limit:
        raise UsageError(f"The {what} is {len(text)} characters long; keep it to {limit}.")


def parse_severity(rest: str) -> ChangeSeverity:
    """`[ID] <severity>` or `<severity> [ID]`."""
    incident_id, tail = take_id_either_end(rest)
    if not tail:
        raise UsageError("Give the new severity.")
    if tail.upper() not in Severity.__members__:
        raise UsageError(f"'{_quote(tail)}' is not a severity; use one of {SEVERITIES}.")
    return _build(ChangeSeverity, incident_id=incident_id, severity=tail)


_BROADCASTS = {"@here", "@channel", "@everyone"}
_GROUP = re.compile(r"<!subteam\^(S[A-Z0-9]+)(?:\|([^<>]*))?>")


def parse_mention(token: str) -> str:
    """The user ID in `<@U123>`, `<@U123|name>` (or a bare `U123`)."""
    match = _MENTION.match(token)
    if match:
        return match.group(1)
    if is_user_id(token):
        return token
    group = _GROUP.fullmatch(token)
    if group:
        name = (group.group(2) or group.group(1)).removeprefix("@")
        raise UsageError(f"'@{_quote(name)}' is a user group; mention one person like @alice.")
    if token.lower() in _BROADCASTS:
        raise UsageError(f"'{token}' is everyone, not a person; mention one person like @alice.")
    if token.startswith("@"):
        # Slack sends @name as plain text when the command does not escape mentions.
        raise UsageError(
            f"I received '{_quote(token)}' as plain text, not as a mention. Pick the person from "
            "Slack's @ suggestions so that their ID comes through."
        )
    raise UsageError(f"'{_quote(token)}' is not a mention of a person; mention them like @alice.")


def parse_role(word: str) -> IncidentRole:
    role = _ROLE_ALIASES.get(word.lower().replace("_", "-"))
    if role is None:
        raise UsageError(f"'{_quote(word)}' is not a role; use one of {ROLES}.")
    return role


def parse_assign(rest: str) -> AssignRole:
    """`[ID] <role> <@user>` or `<role> <@user> [ID]` (the mention may also come first)."""
    incident_id, tail = take_id_either_end(rest)
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


def parse_escalate(rest: str) -> EscalateIncident:
    """`[ID] [reason]`."""
    incident_id, reason = take_incident_id(rest)
    _check_length("reason", reason, MESSAGE_MAX)
    return _build(EscalateIncident, incident_id=incident_id, reason=reason)


_PAGE_NUMBER = re.compile(r"^[0-9]{1,6}$")  # ASCII: \d (and int) read '２' as 2


def parse_list(rest: str) -> ListIncidents:
    """`[open|all|drills] [page N]`."""
    words_ = rest.lower().split()
    page = 1
    if len(words_) >= 2 and words_[-2] == "page":
        if not _PAGE_NUMBER.match(words_[-1]) or not 1 <= int(words_[-1]) <= LIST_PAGE_MAX:
            raise UsageError(f"'{_quote(words_[-1])}' is not a page number; pages count from 1.")
        page = int(words_[-1])
        words_ = words_[:-2]
    filter_ = " ".join(words_)
    if filter_ in ("", "open"):
        return ListIncidents(open_only=True, page=page)
    if filter_ == "all":
        return ListIncidents(open_only=False, page=page)
    if filter_ in ("drills", "drill"):
        return ListIncidents(open_only=False, drills=True, page=page)
    raise UsageError(
        f"'{_quote(rest.strip())}' is not a filter; use `open`, `all` or `drills`, then "
        "`page 2` for more."
    )
