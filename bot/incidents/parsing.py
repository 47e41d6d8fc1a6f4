"""Slash-command text -> command models. Errors are UsageError naming what was wrong."""

from __future__ import annotations

import shlex

from pydantic import ValidationError

from bot.errors import UsageError
from bot.incidents.schemas import TITLE_MAX, DeclareIncident
from bot.models import Severity

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
