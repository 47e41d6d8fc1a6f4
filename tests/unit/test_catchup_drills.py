"""The pure parts of catch-ups and drills: the catch-up's rules and its rendering within
Slack's limits, the drill report's rules (which level answered), drill parsing, war-room
names of drills, and the policy's `drills:` settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.console.workspace.state import channel_name_error
from bot.errors import ConfigError, UsageError
from bot.incidents.catchup import (
    FiringAlert,
    OpenItem,
    RemediationTried,
    build_catchup,
)
from bot.incidents.drill_report import PageSent, answered_level, build_drill_report
from bot.incidents.naming import CHANNEL_NAME_MAX, war_room_name
from bot.incidents.parsing import parse_drill
from bot.models import Incident, Severity, Status, TimelineEvent
from bot.policy import parse_policy
from bot.refs import Person
from bot.slack import catchup_text
from bot.slack.blocks import SECTION_MAX
from tests.unit.test_policy import MINIMAL

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


def _incident(**changes: object) -> Incident:
    base = Incident(
        id="INC-20261205-001",
        title="Checkout returns 502",
        severity=Severity.P1,
        status=Status.IDENTIFIED,
        declared_by="U0ALICE",
        declared_at=T0,
        updated_at=T0,
        roles={"commander": "U0ALICE"},
        eta="in 30 min",
    )
    return base.evolve(**changes)


def _event(minutes: int, kind: str, text: str, **data: object) -> TimelineEvent:
    return TimelineEvent(
        incident_id="INC-20261205-001",
        at=T0 + timedelta(minutes=minutes),
        actor="U0ALICE",
        kind=kind,
        text=text,
        data=dict(data),
        id=minutes,
    )


def test_catchup_keeps_the_newest_and_counts_the_rest() -> None:
    tried = [
        RemediationTried(
            n, "kubernetes.restart", "checkout", "failed", "", T0 + timedelta(minutes=n)
        )
        for n in range(1, 6)
    ]
    items = [
        OpenItem("later", "U0B", T0 + timedelta(days=3)),
        OpenItem("soonest", "U0B", T0 + timedelta(days=1)),
        OpenItem("middle", "U0B", T0 + timedelta(days=2)),
    ]
    tail = [_event(n, "noted", f"note {n}") for n in (5, 1, 9, 7)]
    caught = build_catchup(
        _incident(),
        now=T0 + timedelta(hours=2),
        updates=[_event(3, "updated", "old"), _event(8, "updated", "new"), _event(9, "noted", "x")],
        remediations=tried,
        diagnoses=[_event(4, "diagnosed", "d1", service="db", grade="OK", grades={"ping": "OK"})],
        items=items,
        tail=tail,
    )
    assert caught.open_seconds == 7200
    assert caught.last_update is not None and caught.last_update.text == "new"
    assert [r.id for r in caught.tried] == [5, 4, 3] and caught.tried_total == 5
    assert [i.text for i in caught.items] == ["soonest", "middle"] and caught.items_total == 3
    assert [e.text for e in caught.recent] == ["note 5", "note 7", "note 9"]
    assert caught.diagnosis is not None and caught.diagnosis.grade == "OK"
    # A resolved incident was open until its resolution, whatever `now` is.
    resolved = _incident(status=Status.RESOLVED, resolved_at=T0 + timedelta(minutes=45))
    assert build_catchup(resolved, now=T0 + timedelta(days=9)).open_seconds == 2700


def test_catchup_renders_within_fifteen_lines_and_one_section_whatever_the_record() -> None:
    long = "<!channel> " + "x" * 5000
    caught = build_catchup(
        _incident(
            title=long[:150],
            roles={r: "U0LONGUSER" for r in ("commander", "tech-lead", "comms-lead", "sme")},
        ),
        now=T0 + timedelta(days=40),
        updates=[_event(1, "updated", long, said=long)],
        remediations=[
            RemediationTried(n, "a" * 60, "s" * 100, "failed", long, T0) for n in range(20)
        ],
        diagnoses=[
            _event(
                2,
                "diagnosed",
                "d",
                service="db",
                grade="CRIT",
                grades={f"c{n}": "CRIT" for n in range(30)},
            )
        ],
        items=[OpenItem(long, "U0B", T0) for _ in range(10)],
        alerts=[FiringAlert(long, T0) for _ in range(10)],
        tail=[_event(n, "noted", long) for n in range(10)],
    )
    text = catchup_text.catchup_text(caught)
    assert len(text.splitlines()) < 15
    assert len(text) <= SECTION_MAX
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "Alerts firing (10): " in text and "and 7 more" in text
    # Escaping never makes it longer than that: an `&` takes five characters.
    ampersands = build_catchup(
        _incident(title="&" * 150),
        now=T0,
        updates=[_event(1, "updated", "&" * 2000, said="&" * 2000)],
        items=[OpenItem("&" * 1000, "U0B", T0) for _ in range(3)],
        alerts=[FiringAlert("&" * 500) for _ in range(5)],
        tail=[_event(n, "noted", "Note: " + "&" * 100, said="&" * 100) for n in range(3)],
    )
    assert len(catchup_text.catchup_text(ampersands)) <= SECTION_MAX
    empty = catchup_text.catchup_text(build_catchup(_incident(roles={}), now=T0))
    assert "Alerts firing: none recorded" in empty and "Roles: nobody holds a role yet" in empty
    assert "Tried: no remediation yet" in empty and "Open action items: none" in empty


def test_a_long_recent_line_keeps_its_mentions_and_cuts_the_persons_words() -> None:
    """A status update longer than a line is the usual case: it was shown whole as cut
    plain text, its author as a raw ID (`by @U0ALICE:`) instead of a mention."""
    said = "Rolled back checkout 4.3.1 & error rates dropped; " * 6 + "<!channel> stay off db01"
    head = "Update (INVESTIGATING → IDENTIFIED) by "
    event = TimelineEvent(
        incident_id="INC-20261205-001",
        at=T0,
        actor="U0ALICE",
        kind="updated",
        text=f"{head}@U0ALICE: {said}",
        said=said,
        parts=(head, Person("U0ALICE"), ": " + said),
        id=1,
    )
    text = catchup_text.catchup_text(build_catchup(_incident(), now=T0, tail=[event]))
    [line] = [line for line in text.splitlines() if "Update (INVESTIGATING" in line]
    assert f"{head}<@U0ALICE>: Rolled back checkout 4.3.1 &amp; error rates" in line, line
    assert "@U0ALICE:" not in line.replace("<@U0ALICE>", "") and line.endswith("…")
    assert len(line) < 250 and "<!channel>" not in line


def test_which_level_answered() -> None:
    pages = [PageSent(1, ("U0ONCALL", "S0SRE"), 100.0), PageSent(2, ("U0LEAD",), 400.0)]
    assert answered_level(pages, None, None) is None
    assert answered_level(pages, "U0ONCALL", 500.0) == 1  # named by level 1
    assert answered_level(pages, "U0LEAD", 500.0) == 2
    assert answered_level(pages, "U0GROUPMEMBER", 300.0) == 1  # only level 1 paged by then
    assert answered_level(pages, "U0GROUPMEMBER", 500.0) == 2
    assert answered_level(pages, "U0LEAD", 50.0) is None  # before any page
    drill = _incident(
        drill=True,
        acknowledged_by="U0LEAD",
        acknowledged_at=T0 + timedelta(seconds=500),
    )
    report = build_drill_report(
        drill,
        [PageSent(2, ("U0LEAD",), T0.timestamp() + 400), PageSent(1, ("U0A",), T0.timestamp())],
        [],
        {},
        ["pagerduty"],
    )
    assert [p.level for p in report.pages] == [1, 2]
    assert report.ack_seconds == 500 and report.answered_level == 2
    assert report.providers_skipped == ("pagerduty",)
    assert type(report).from_json(report.to_json()) == report


def test_parse_drill() -> None:
    catalog = ["checkout", "cache"]
    command = parse_drill("p1 checkout: database failover", catalog)
    assert command.drill and command.severity is Severity.P1
    assert command.title == "checkout: database failover" and command.services == ("checkout",)
    command = parse_drill("P2 Region loss service=cache service=checkout", catalog)
    assert command.title == "Region loss" and command.services == ("cache", "checkout")
    # A leading word the catalog does not know is just words of the scenario.
    assert parse_drill("P3 comms: status page down", catalog).services == ()
    for bad, message in (
        ("", "Give a severity"),
        ("P9 x", "not a severity"),
        ("P1", "Describe the scenario"),
        ("P1 service=cache", "Describe the scenario"),
        ("P1 x service=nosuch", "'nosuch' is not a service of the catalog. Services: cache"),
        ("P1 " + "x" * 200, "scenario is 200 characters"),
    ):
        with pytest.raises(UsageError, match=message):
            parse_drill(bad, catalog)


def test_drill_war_room_names_fit_slack() -> None:
    name = war_room_name("INC-20261205-001", "A very long scenario " * 10, drill=True)
    assert name.startswith("drill-inc-20261205-001-") and len(name) <= CHANNEL_NAME_MAX
    assert channel_name_error(name) is None
    again = war_room_name("INC-20261205-001", "A very long scenario " * 10, attempt=9, drill=True)
    assert again.endswith("-9") and len(again) <= CHANNEL_NAME_MAX
    assert war_room_name("INC-20261205-001", "x").startswith("inc-")


def test_policy_drills_settings() -> None:
    assert parse_policy(MINIMAL).drills.page_providers is False
    policy = parse_policy(MINIMAL + "drills: {page_providers: true}\n")
    assert policy.drills.page_providers is True
    with pytest.raises(ConfigError, match="page_provider"):
        parse_policy(MINIMAL + "drills: {page_provider: true}\n")
