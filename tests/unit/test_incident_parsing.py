"""Slash-command text and modal input -> command models (bot.incidents.parsing)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from bot.durations import Duration
from bot.errors import UsageError
from bot.incidents.forms import FormErrors, parse_declare_form, parse_update_form
from bot.incidents.parsing import (
    parse_assign,
    parse_list,
    parse_mention,
    parse_note,
    parse_reopen,
    parse_resolve,
    parse_severity,
    parse_target,
    take_incident_id,
)
from bot.incidents.update_parsing import parse_duration, parse_update
from bot.models import IncidentRole, Severity, Status

ID = "INC-20261127-001"


@pytest.mark.parametrize(
    ("text", "status", "message", "eta", "impact"),
    [
        ("identified Bad deploy", Status.IDENTIFIED, "Bad deploy", None, None),
        (
            "identified Bad deploy eta 30m",
            Status.IDENTIFIED,
            "Bad deploy",
            timedelta(minutes=30),
            None,
        ),
        (
            "monitoring Fix is out eta 2h impact EU card payments fail",
            Status.MONITORING,
            "Fix is out",
            timedelta(hours=2),
            "EU card payments fail",
        ),
        (
            "monitoring Fix is out impact EU card payments fail eta 90",
            Status.MONITORING,
            "Fix is out",
            timedelta(seconds=90),
            "EU card payments fail",
        ),
        (
            "IDENTIFIED Bad deploy impact: checkout only",
            Status.IDENTIFIED,
            "Bad deploy",
            None,
            "checkout only",
        ),
        ("resolved Rolled back", Status.RESOLVED, "Rolled back", None, None),
        # "eta" inside the message, not followed by a duration and not at the end: words.
        (
            "investigating the eta is unclear",
            Status.INVESTIGATING,
            "the eta is unclear",
            None,
            None,
        ),
        # A message that starts with a keyword keeps it.
        ("identified impact is limited", Status.IDENTIFIED, "impact is limited", None, None),
    ],
)
def test_update_arguments(
    text: str,
    status: Status,
    message: str,
    eta: timedelta | None,
    impact: str | None,
) -> None:
    command = parse_update(text)
    assert (command.incident_id, command.status, command.message) == (None, status, message)
    assert (command.eta, command.impact) == (eta, impact)


def test_update_with_an_incident_id() -> None:
    command = parse_update(f"{ID.lower()} monitoring Caches warm eta 1d")
    assert command.incident_id == ID
    assert command.status is Status.MONITORING and command.eta == timedelta(days=1)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "Give a status and a message"),
        ("fixed It works", "'fixed' is not a status"),
        ("identified", "Say what is happening"),
        ("identified Bad deploy eta soon", "'soon' is not a duration"),
        ("identified Bad deploy eta", "Give a duration after `eta`"),
        ("identified Bad deploy eta 1bd", "clock time"),
        ("identified Bad deploy eta 0", "later than now"),
        ("identified Bad deploy eta 30m and more words", "at the end"),
        ("identified Bad deploy eta 30m eta 1h", "once"),
        ("identified Bad deploy impact", "Describe the impact"),
        ("INC-2026 identified Bad deploy", "not an incident ID"),
        ("identified " + "x" * 2001, "keep it to 2000"),
    ],
)
def test_bad_update_arguments(text: str, problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        parse_update(text)


@pytest.mark.parametrize(
    ("token", "user_id"),
    [
        ("<@U0BOB>", "U0BOB"),
        ("<@U0BOB|bob>", "U0BOB"),
        ("<@W0ENT123|ent>", "W0ENT123"),
        ("U0BOB", "U0BOB"),
    ],
)
def test_mentions(token: str, user_id: str) -> None:
    assert parse_mention(token) == user_id


def test_plain_text_at_name_explains_itself() -> None:
    with pytest.raises(UsageError, match="plain text, not as a mention"):
        parse_mention("@bob")
    with pytest.raises(UsageError, match="not a mention"):
        parse_mention("bob")


def test_a_group_or_everyone_is_not_taken_for_a_person_typed_as_plain_text() -> None:
    with pytest.raises(UsageError, match=r"^'@sre' is a user group; mention one person"):
        parse_mention("<!subteam^S0SRE|@sre>")
    with pytest.raises(UsageError, match=r"^'@here' is everyone, not a person"):
        parse_mention("@here")


@pytest.mark.parametrize(
    ("text", "role", "user_id", "incident_id"),
    [
        ("commander <@U0BOB|bob>", IncidentRole.COMMANDER, "U0BOB", None),
        ("tech-lead <@U0BOB>", IncidentRole.TECH_LEAD, "U0BOB", None),
        ("tech_lead <@U0BOB>", IncidentRole.TECH_LEAD, "U0BOB", None),
        ("<@U0BOB> comms-lead", IncidentRole.COMMS_LEAD, "U0BOB", None),
        (f"{ID} sme <@U0CAROL|carol>", IncidentRole.SME, "U0CAROL", ID),
        # The README's order: the ID last.
        (f"commander <@U0BOB> {ID.lower()}", IncidentRole.COMMANDER, "U0BOB", ID),
    ],
)
def test_assign(text: str, role: IncidentRole, user_id: str, incident_id: str | None) -> None:
    command = parse_assign(text)
    assert (command.role, command.user_id, command.incident_id) == (role, user_id, incident_id)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("commander", "a role and one person"),
        ("janitor <@U0BOB>", "'janitor' is not a role"),
        ("commander @bob", "plain text"),
    ],
)
def test_bad_assign(text: str, problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        parse_assign(text)


def test_targets_and_small_commands() -> None:
    assert parse_target("", "ack").incident_id is None
    assert parse_target(ID.lower(), "ack").incident_id == ID
    with pytest.raises(UsageError, match="takes only an incident ID"):
        parse_target(f"{ID} now", "ack")
    assert parse_severity("p0").severity is Severity.P0
    assert parse_severity(f"{ID} P2").incident_id == ID
    # The README writes `/incident severity <P0-P3> [ID]`: the ID last is taken as well.
    last = parse_severity(f"P0 {ID}")
    assert (last.severity, last.incident_id) == (Severity.P0, ID)
    with pytest.raises(UsageError, match="'INC-2026' is not an incident ID"):
        parse_severity("P0 INC-2026")
    with pytest.raises(UsageError, match="'P9' is not a severity"):
        parse_severity("P9")
    # A first word that only starts like an ID is text, not a mistyped ID.
    assert parse_note("inc-review at 3pm").text == "inc-review at 3pm"
    assert parse_note(f"{ID} Rolled back").incident_id == ID
    with pytest.raises(UsageError, match="text of the note"):
        parse_note(ID)
    assert parse_resolve("Rolled back the deploy").summary == "Rolled back the deploy"
    with pytest.raises(UsageError, match="summary"):
        parse_resolve("")
    assert parse_reopen("").reason == ""
    assert parse_list("").open_only and not parse_list("all").open_only
    with pytest.raises(UsageError, match="use `open`, `all` or `drills`"):
        parse_list("closed")
    assert take_incident_id(f"{ID}   rest of it") == (ID, "rest of it")


def test_declare_form() -> None:
    command = parse_declare_form(
        {
            "title": "  Checkout   API down ",
            "severity": "P1",
            "impact": "EU users",
            "services": "checkout, payments, checkout",
        }
    )
    assert command.title == "Checkout API down" and command.severity is Severity.P1
    assert command.services == ("checkout", "payments") and command.impact == "EU users"
    picked = parse_declare_form({"title": "x", "severity": "P3", "services": ["a", "b"]})
    assert picked.services == ("a", "b")
    with pytest.raises(FormErrors) as refused:
        parse_declare_form({"title": "", "severity": None})
    assert set(refused.value.errors) == {"title", "severity"}


def test_update_form() -> None:
    command = parse_update_form(
        ID, {"status": "monitoring", "message": "Fix out", "eta": "45m", "impact": ""}
    )
    assert command.status is Status.MONITORING and command.eta == timedelta(minutes=45)
    assert command.impact is None and command.incident_id == ID
    with pytest.raises(FormErrors) as refused:
        parse_update_form(ID, {"status": "monitoring", "message": " ", "eta": "soon"})
    assert set(refused.value.errors) == {"message", "eta"}


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (lambda: parse_list("all page ２"), "is not a page number"),
        (lambda: take_incident_id("INC-２０２６１１２７-００１ typo"), "is not an incident ID"),
        (lambda: parse_duration("３０m"), "is not a duration"),
        (lambda: Duration.parse("１２"), "write its digits as 0-9"),
        (lambda: Duration.parse("12ſ"), "invalid duration"),  # long s: IGNORECASE read it as s
    ],
)
def test_numbers_are_ascii_digits_only(command: Callable[[], object], said: str) -> None:
    # `\d` and int() read any script's digits: page '２' was page 2, an ETA of '３０m' 30
    # minutes, and Duration '１２' 12 s (remediation's older_than=１２).
    with pytest.raises((UsageError, ValueError), match=said):
        command()
