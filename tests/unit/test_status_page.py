"""The status page's pure parts: component states from severities, mentions in public text,
escaping, the Atom feed's shape, the policy's `status_page:` and the ETag comparison."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from bot.errors import ConfigError
from bot.models import Incident, Severity, Status
from bot.policy import parse_policy
from bot.policy.status_page import StatusComponent
from bot.status.facts import build_document
from bot.status.models import ComponentState
from bot.status.render import render_atom, render_html, render_json
from bot.status.routes import _matches
from bot.status.storage import PublishedIncident, PublishedUpdate
from bot.status.text import public_text
from tests.e2e.status_helpers import atom_entries

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
COMPONENTS = [
    StatusComponent(name="Checkout", services=("checkout", "cart")),
    StatusComponent(name="payments"),
    StatusComponent(name="Search", services=("search",)),
]


def _incident(
    number: int,
    severity: Severity,
    services: tuple[str, ...],
    *,
    status: Status = Status.INVESTIGATING,
    title: str = "Something is wrong",
) -> PublishedIncident:
    resolved = status is Status.RESOLVED
    incident = Incident(
        id=f"INC-20261201-{number:03d}",
        title=title,
        severity=severity,
        status=status,
        services=services,
        declared_by="U0ALICE",
        declared_at=T0 + timedelta(minutes=number),
        updated_at=T0 + timedelta(minutes=number),
        resolved_at=T0 + timedelta(hours=1) if resolved else None,
        resolved_by="U0ALICE" if resolved else None,
        roles={"commander": "U0ALICE"},
    )
    return PublishedIncident(incident, T0 + timedelta(minutes=number, seconds=30))


@pytest.mark.parametrize(
    ("severity", "state"),
    [
        (Severity.P0, ComponentState.MAJOR),
        (Severity.P1, ComponentState.PARTIAL),
        (Severity.P2, ComponentState.DEGRADED),
        (Severity.P3, ComponentState.DEGRADED),
    ],
)
def test_an_open_incident_sets_its_components_state_by_severity(
    severity: Severity, state: ComponentState
) -> None:
    doc = build_document(COMPONENTS, [_incident(1, severity, ("cart",))], [])
    states = {component.name: component.state for component in doc.components}
    assert states == {
        "Checkout": state,  # cart is one of Checkout's services
        "payments": ComponentState.OPERATIONAL,
        "Search": ComponentState.OPERATIONAL,
    }
    assert doc.state is state


def test_the_worst_open_incident_wins_and_a_resolved_one_changes_nothing() -> None:
    published = [
        _incident(1, Severity.P3, ("checkout",)),
        _incident(2, Severity.P0, ("checkout", "payments")),
        _incident(3, Severity.P0, ("search",), status=Status.RESOLVED),
    ]
    doc = build_document(COMPONENTS, published, [])
    states = {component.name: component.state for component in doc.components}
    assert states == {
        "Checkout": ComponentState.MAJOR,
        "payments": ComponentState.MAJOR,
        "Search": ComponentState.OPERATIONAL,
    }
    assert [i.id for i in doc.open_incidents] == ["INC-20261201-001", "INC-20261201-002"]
    [resolved] = doc.resolved_incidents
    assert resolved.state is ComponentState.OPERATIONAL and resolved.components == ["Search"]


def test_nothing_open_is_all_operational() -> None:
    doc = build_document(COMPONENTS, [], [])
    assert doc.state is ComponentState.OPERATIONAL and doc.updated_at is None
    assert "All systems operational" in render_html(doc)


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("Handed to @alice", "Handed to @alice"),  # a plain name stays
        ("Handed to @U0BOB12345 for the rollback", "Handed to a team member for the rollback"),
        ("Typed in a form: <@U0BOB|bob> and <@U0CAROL>", "Typed in a form: @bob and a team member"),
        ("<!subteam^S0SRE|@sre> and <!channel> in <#C0OPS|ops>", "@sre and @channel in #ops"),
        ("<script>alert(1)</script> & <b>", "<script>alert(1)</script> & <b>"),  # text, kept
    ],
)
def test_public_text_names_nobody_by_slack_id(stored: str, shown: str) -> None:
    assert public_text(stored) == shown


def test_user_text_is_escaped_in_html_and_atom_and_plain_in_json() -> None:
    title = "<script>alert(1)</script>"
    published = [_incident(1, Severity.P1, ("checkout",), title=title)]
    update = PublishedUpdate(published[0].incident.id, T0, Status.IDENTIFIED, 'a "quote" & <b>')
    doc = build_document(COMPONENTS, published, [update])
    html = render_html(doc)
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "a &#34;quote&#34; &amp; &lt;b&gt;" in html
    [entry] = atom_entries(render_atom(doc, epoch=T0))  # parses, so escaped as XML too
    assert entry.findtext("{http://www.w3.org/2005/Atom}title", "").startswith(title)
    data = json.loads(render_json(doc))
    assert data["open_incidents"][0]["title"] == title
    assert data["open_incidents"][0]["updates"][0]["text"] == 'a "quote" & <b>'


def test_the_feed_is_atom_with_an_entry_per_incident_newest_change_first() -> None:
    published = [
        _incident(1, Severity.P1, ("checkout",)),
        _incident(2, Severity.P2, ("search",), status=Status.RESOLVED),
    ]
    updates = [
        PublishedUpdate(
            published[0].incident.id, T0 + timedelta(hours=2), Status.MONITORING, "Fixed"
        )
    ]
    doc = build_document(COMPONENTS, published, updates)
    feed = render_atom(doc, epoch=T0)
    entries = atom_entries(feed)
    ids = [entry.findtext("{http://www.w3.org/2005/Atom}id") for entry in entries]
    assert ids == [
        "urn:chatops-bot:status:INC-20261201-001",
        "urn:chatops-bot:status:INC-20261201-002",
    ]
    root = ET.fromstring(feed)
    assert root.findtext("{http://www.w3.org/2005/Atom}updated") == "2026-12-01T11:00:00Z"
    assert "Monitoring (1 Dec 2026, 11:00 UTC): Fixed" in entries[0].findtext(
        "{http://www.w3.org/2005/Atom}content", ""
    )
    # With nothing ever published the feed is still valid Atom.
    assert atom_entries(render_atom(build_document(COMPONENTS, [], []), epoch=T0)) == []


def test_json_holds_no_roles_people_or_severity() -> None:
    doc = build_document(COMPONENTS, [_incident(1, Severity.P0, ("checkout",))], [])
    text = render_json(doc)
    for hidden in ("U0ALICE", "commander", "roles", "declared_by", "P0", "severity"):
        assert hidden not in text, hidden


POLICY = """
announce_channel: C0INCIDENTS
severities:
  P0: {ack_within: 5m, resolve_within: 1h, update_every: 15m}
  P1: {ack_within: 15m, resolve_within: 4h, update_every: 30m}
  P2: {ack_within: 1h, resolve_within: 1d, update_every: 2h}
  P3: {ack_within: 1bd, resolve_within: 5bd}
services:
  checkout: {http: [{url: "http://127.0.0.1:9/"}]}
  payments: {http: [{url: "http://127.0.0.1:9/"}]}
"""


def test_components_default_to_the_catalog_and_a_list_names_known_services() -> None:
    assert [c.name for c in parse_policy(POLICY).status_components()] == [
        "checkout",
        "payments",
    ]
    listed = parse_policy(
        POLICY + "status_page: [payments, {name: Shop, services: [checkout, payments]}]\n"
    )
    assert [(c.name, sorted(c.covers)) for c in listed.status_components()] == [
        ("payments", ["payments"]),
        ("Shop", ["checkout", "payments"]),
    ]
    with pytest.raises(ConfigError, match="'search' is not in services"):
        parse_policy(POLICY + "status_page: [{name: Search, services: [search]}]\n")
    with pytest.raises(ConfigError, match="'Checkout' is not in services"):
        parse_policy(POLICY + "status_page: [Checkout]\n")


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        ('"abc"', True),
        ('W/"abc"', True),
        ('"x", "abc"', True),
        ("*", True),
        ('"x"', False),
        ("", False),
    ],
)
def test_if_none_match(header: str, matches: bool) -> None:
    assert _matches(header, '"abc"') is matches
