"""Mentions are data (#16.2): one timeline, built from references, rendered per surface; and
no domain package writes Slack markup."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import refs
from bot.console.render.text import StaticNames, clean_mrkdwn, rich_text
from bot.models import SYSTEM, TimelineEvent
from bot.refs import Channel, Group, Person
from bot.reports.markdown import timeline_cell
from bot.slack import rich
from bot.slack.list_text import timeline_line

AT = datetime(2026, 3, 1, 14, 2, tzinfo=UTC)
TITLE = "Checkout <!here> & cart *down*"  # a person's words: never markup


def _event(kind: str, parts: refs.Rich, said: str = "", actor: str = "U0ALICE") -> TimelineEvent:
    return TimelineEvent(
        incident_id="INC-20260301-001",
        at=AT,
        actor=actor,
        kind=kind,
        text=refs.plain(parts),
        said=said,
        parts=parts,
    )


TIMELINE = [
    _event(
        "declared",
        refs.text("Declared P1 by ", Person("U0ALICE"), f": {TITLE}"),
        said=TITLE,
    ),
    _event(
        "war_room_opened",
        refs.text("War room ", Channel("C0ROOM"), " opened"),
        actor=SYSTEM.user_id,
    ),
    _event(
        "paged",
        refs.text("Paged level 1: ", Person("U0BOB"), " ", Group("S0SRE"), " (on declaration)"),
        actor=SYSTEM.user_id,
    ),
    _event(
        "assigned",
        refs.text(Person("U0BOB"), " is tech-lead, assigned by ", Person(SYSTEM.user_id)),
        actor=SYSTEM.user_id,
    ),
]
NAMES = StaticNames(
    users={"U0ALICE": "alice", "U0BOB": "bob"},
    channels={"C0ROOM": "inc-checkout"},
    usergroups={"S0SRE": "sre"},
)


def test_one_timeline_rendered_for_slack_markdown_and_the_console() -> None:
    slack = [rich.mrkdwn(e.parts, e.said) for e in TIMELINE]
    assert slack == [
        "Declared P1 by <@U0ALICE>: Checkout &lt;!here&gt; &amp; cart *down*",
        "War room <#C0ROOM> opened",
        "Paged level 1: <@U0BOB> <!subteam^S0SRE> (on declaration)",
        "<@U0BOB> is tech-lead, assigned by the bot",
    ]
    assert [timeline_cell(e) for e in TIMELINE] == [
        # `&lt;`: a Markdown viewer shows `<`, and never reads a tag or an autolink there.
        "Declared P1 by @U0ALICE: Checkout &lt;!here> & cart *down*",
        "War room #C0ROOM opened",
        "Paged level 1: @U0BOB @S0SRE (on declaration)",
        "@U0BOB is tech-lead, assigned by the bot",
    ]
    console = [rich_text(e.parts, NAMES) for e in TIMELINE]
    assert console == [
        f"Declared P1 by @alice: {TITLE}",
        "War room #inc-checkout opened",
        "Paged level 1: @bob @sre (on declaration)",
        "@bob is tech-lead, assigned by the bot",
    ]
    # What a Slack client shows of the Slack form names the same people (bold aside).
    shown = [clean_mrkdwn(line, NAMES) for line in slack]
    assert shown[1:] == console[1:]
    assert shown[0] == "Declared P1 by @alice: Checkout <!here> & cart down"
    # The whole line in the channel: the date, who, the line.
    assert timeline_line(TIMELINE[0]).endswith(f" <@U0ALICE> · {slack[0]}")


def test_parts_are_kept_as_json_and_older_rows_read_into_the_same_parts() -> None:
    for event in TIMELINE:
        assert refs.load(refs.dump(event.parts)) == event.parts
    stored_before = "Declared P1 by <@U0ALICE>: " + TITLE  # a row written before parts
    assert refs.legacy(stored_before, TITLE) == TIMELINE[0].parts
    assert refs.legacy("Paged level 1: <@U0BOB> <!subteam^S0SRE|@sre> (on declaration)") == (
        TIMELINE[2].parts
    )
    # A person's words are never read as references, even when they look like markup.
    assert refs.legacy("Note: <@U0EVE>", "<@U0EVE>") == ("Note: <@U0EVE>",)
    assert refs.load([{"person": 1}]) is None and refs.load("text") is None


def test_a_said_that_is_not_the_end_shows_all_of_it_as_text() -> None:
    assert rich.mrkdwn(refs.text("By ", Person("U1"), ": hi"), "bye") == "By @U1: hi"


# -- no domain package writes Slack markup -------------------------------------------------

BOT = Path(__file__).resolve().parents[2] / "bot"
# Surfaces that render (or, as a Slack client would, read) Slack markup.
SURFACES = ("slack", "console")
MARKUP = ("<@", "<#", "<!")
# Modules allowed to hold markup, each with its reason.
ALLOWED = {
    # Reads what users typed: slash-command text arrives with Slack's escaped mentions.
    "incidents/parsing.py": "parse_mention reads incoming Slack text",
    # The one reader of rows and queued notices written before parts were kept.
    "refs.py": "legacy() reads timeline rows stored as text with markup",
    # Sanitises people's words for the public: markup typed literally into an update's
    # text is read so that no Slack ID reaches the status page. It reads, never writes.
    "status/text.py": "public_text reads markup a person typed into an update",
}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def markup_literals(source: str) -> list[tuple[int, str]]:
    """String literals (f-strings' pieces included, docstrings not) holding Slack markup."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            if any(seq in node.value for seq in MARKUP):
                hits.append((node.lineno, node.value))
    return hits


def test_the_scan_finds_markup_in_literals_and_f_strings() -> None:
    source = 'def f(u):\n    """`<@U1>` in a docstring is prose."""\n    return f"by <@{u}>"\n'
    assert markup_literals(source) == [(3, "by <@")]
    assert markup_literals('X = "<#C1>"\nY = "<!subteam^S1>"\nZ = "<b>"\n') == [
        (1, "<#C1>"),
        (2, "<!subteam^S1>"),
    ]


def test_no_domain_package_writes_slack_markup() -> None:
    found = []
    for path in sorted(BOT.rglob("*.py")):
        relative = path.relative_to(BOT).as_posix()
        if relative.split("/")[0] in SURFACES or relative in ALLOWED:
            continue
        found += [
            f"{relative}:{line}: {value!r}" for line, value in markup_literals(path.read_text())
        ]
    assert not found, "Slack markup in a domain package (build bot.refs values):\n" + "\n".join(
        found
    )


@pytest.mark.parametrize("relative", sorted(ALLOWED))
def test_each_allowed_module_still_needs_it(relative: str) -> None:
    # An allowance nobody needs any more is removed, so the list says what remains.
    source = (BOT / relative).read_text()
    assert markup_literals(source) or "<(?:@" in source
