"""Alerts at the edge and their routing: parsing Alertmanager's, Grafana's and the generic
body, bounded and validated; the route rules; the policy's `alerts:` section; the bearer
check; a silence's matchers."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.alerts.matchers import matcher_sets
from bot.alerts.models import Alert, AlertsRefused, parse_time, read_alertmanager, read_generic
from bot.alerts.routes import bearer_valid
from bot.alerts.routing import NO_SERVICE, by_service, route
from bot.alerts.storage import StoredAlert
from bot.alerts.wording import declaration
from bot.errors import ConfigError
from bot.policy import parse_policy
from bot.policy.alerts import AlertsConfig, highest
from tests.alert_helpers import alert, webhook
from tests.unit.test_policy import MINIMAL


def _raw(body: object) -> bytes:
    return json.dumps(body).encode()


def test_times_keep_microseconds_and_go_zero_time_is_none() -> None:
    assert parse_time("2026-12-05T04:00:00.123456789Z") == datetime(
        2026, 12, 5, 4, 0, 0, 123456, tzinfo=UTC
    )
    assert parse_time("2026-12-05T05:00:00+01:00") == datetime(2026, 12, 5, 4, tzinfo=UTC)
    assert parse_time("0001-01-01T00:00:00Z") is None
    with pytest.raises(ValueError, match="not an RFC 3339 time"):
        parse_time("yesterday")


def test_alertmanager_webhook_is_read_into_alerts() -> None:
    body = webhook([alert("HighErrorRate", "checkout", summary="5xx")])
    [read] = read_alertmanager(_raw(body)).alerts
    assert read.source == "alertmanager" and read.status == "firing"
    assert read.name == "HighErrorRate" and read.summary == "5xx"
    assert read.labels["service"] == "checkout" and read.ends_at is None
    assert read.starts_key == "2026-12-05T04:00:00.123456Z"
    assert read.links == (("source", "http://prometheus.example/graph?g0.expr=HighErrorRate"),)


def test_grafana_extras_are_kept_as_links_and_value() -> None:
    body = webhook([alert("CPU", "billing")]) | {"orgId": 1, "state": "alerting"}
    body["alerts"][0] |= {"dashboardURL": "https://g/d/1", "valueString": "[ A=97 ]"}
    [read] = read_alertmanager(_raw(body), source="grafana").alerts
    assert read.source == "grafana" and ("dashboard", "https://g/d/1") in read.links
    assert read.annotations["value"] == "[ A=97 ]"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{oops", "not an Alertmanager webhook: body: Invalid JSON"),
        (b"[]", "not an Alertmanager webhook"),
        (_raw({"status": "firing"}), "alerts: Field required"),
        (_raw(webhook([]) | {"version": "3"}), "webhook version '3' is not supported"),
        (_raw(webhook([alert("X", "s", status="pending")])), "alerts.0.status"),
        (_raw(webhook([{**alert("X", "s"), "labels": {"k" * 300: "v"}}])), "alerts.0.labels"),
        (_raw(webhook([{**alert("X", "s"), "startsAt": "0001-01-01T00:00:00Z"}])), "startsAt"),
    ],
)
def test_malformed_alertmanager_bodies_say_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(AlertsRefused) as caught:
        read_alertmanager(body)
    assert message in str(caught.value)


def test_generic_alert_one_or_many_with_configured_labels() -> None:
    one = {"title": "Disk full", "service": "db", "severity": "P0", "dedup_key": "d1"}
    [read] = read_generic(_raw(one), service_label="app", severity_label="level")
    assert read.fingerprint == "generic:d1" and read.labels["app"] == "db"
    assert read.labels["level"] == "P0" and read.name == "Disk full"
    # The top-level fields win over labels of the same name; without them the labels stand.
    both = {**one, "labels": {"app": "web", "level": "info", "team": "x"}}
    [read] = read_generic(_raw(both), service_label="app", severity_label="level")
    assert (read.labels["app"], read.labels["level"], read.labels["team"]) == ("db", "P0", "x")
    bare = {"title": "Disk full", "dedup_key": "d1", "labels": {"app": "web", "level": "info"}}
    [read] = read_generic(_raw(bare), service_label="app", severity_label="level")
    assert (read.labels["app"], read.labels["level"]) == ("web", "info")
    many = read_generic(_raw({"alerts": [one, {**one, "dedup_key": "d2"}]}))
    assert [a.fingerprint for a in many] == ["generic:d1", "generic:d2"]
    with pytest.raises(AlertsRefused, match="dedup_key: Field required"):
        read_generic(_raw({"title": "x"}))
    with pytest.raises(AlertsRefused, match="surprise: Extra inputs"):
        read_generic(_raw({**one, "surprise": 1}))
    with pytest.raises(AlertsRefused, match="the body is not JSON"):
        read_generic(b"\xff\xfe")


def test_a_generic_alerts_title_wins_over_its_alertname_label() -> None:
    """The title is the format's own name for the alert, as `service` and `severity` are:
    a sender's `alertname` label (copied from another monitor) named the alert, its timeline
    line and what routes matched instead of the title."""
    sent = {"title": "Disk full", "dedup_key": "d1", "labels": {"alertname": "Generic", "a": "b"}}
    [read] = read_generic(_raw(sent))
    assert read.name == "Disk full" and read.labels == {"alertname": "Disk full", "a": "b"}
    # A title made only of control characters (left out) leaves the label standing.
    [read] = read_generic(_raw({**sent, "title": "\u0007"}))
    assert read.name == "Generic"


def _routed(config: AlertsConfig, **labels: str) -> tuple[str, str | None, bool]:
    name = labels.pop("name", "A")
    read = Alert("alertmanager", "f", datetime.now(UTC), "firing", {"alertname": name, **labels})
    result = route(read, config)
    return result.service, result.severity, result.ignored


def test_routes_first_match_wins_then_labels_then_severity_map() -> None:
    config = AlertsConfig.model_validate(
        {
            "token_env": "T",
            "routes": [
                {"match": {"team": "payments"}, "severity": "P1"},
                {"match": {"team": "payments", "env": "dev"}, "ignore": True},
                {"match": {"alertname": "Watchdog"}, "ignore": True},
                {"match": {"job": "node"}, "service": "hosts"},
            ],
        }
    )
    assert _routed(config, service="Checkout", severity="warning") == ("checkout", "P2", False)
    assert _routed(config, service="x", severity="info", team="payments") == ("x", "P1", False)
    # The first match wins: the payments route, not the ignoring one after it.
    assert _routed(config, service="x", team="payments", env="dev")[2] is False
    assert _routed(config, name="Watchdog", service="x") == ("x", None, True)
    assert _routed(config, service="", job="node", severity="P0") == ("hosts", "P0", False)
    assert _routed(config, service="", severity="critical") == (NO_SERVICE, "P1", False)
    assert _routed(config, service="x", severity="page-me") == ("x", None, False)


def test_grouping_by_service_is_in_a_fixed_order() -> None:
    config = AlertsConfig(token_env="T")
    alerts = read_alertmanager(
        _raw(webhook([alert("A", "zeta"), alert("B", "alpha"), alert("C", "zeta")]))
    ).alerts
    groups = by_service([route(a, config) for a in alerts])
    assert list(groups) == ["alpha", "zeta"] and len(groups["zeta"]) == 2
    assert highest(["P3", "P1", "P2"]) == "P1" and highest([]) is None


def test_policy_alerts_section_is_validated_with_its_line() -> None:
    policy = parse_policy(
        MINIMAL + "alerts:\n  token_env: ALERTS_TOKEN\n  severities: {Critical: P0}\n"
    )
    assert policy.alerts.enabled and policy.alerts.severities == {"critical": "P0"}
    assert not parse_policy(MINIMAL).alerts.enabled
    with pytest.raises(ConfigError) as caught:
        parse_policy(
            MINIMAL + "alerts:\n  token_env: ALERTS_TOKEN\n  severities: {critical: P9}\n",
            source="p.yml",
        )
    assert "alerts.severities.critical" in str(caught.value)
    assert f"p.yml:{MINIMAL.count(chr(10)) + 3}:" in str(caught.value)
    with pytest.raises(ConfigError, match="is not an environment variable name"):
        parse_policy(MINIMAL + "alerts: {token_env: 'hunter2 secret'}\n")
    with pytest.raises(ConfigError, match=r"alerts\.routes\.0\.match"):
        parse_policy(MINIMAL + "alerts: {token_env: T, routes: [{match: {}}]}\n")
    timed = parse_policy(MINIMAL + "alerts: {token_env: T, reopen_within: 30m, silence_for: 2h}\n")
    assert timed.alerts.reopen_within.seconds == 1800 and timed.alerts.silence_for.seconds == 7200
    with pytest.raises(ConfigError, match="not business days"):
        parse_policy(MINIMAL + "alerts: {token_env: T, reopen_within: 1bd}\n")
    with pytest.raises(ConfigError, match="at most 5m"):
        parse_policy(MINIMAL + "alerts: {token_env: T, batch_window: 1h}\n")
    with pytest.raises(ConfigError, match="alertmanager_url"):
        parse_policy(MINIMAL + "alerts: {token_env: T, alertmanager_url: 'ftp://x'}\n")


def test_bearer_token_is_checked_exactly() -> None:
    assert bearer_valid({"Authorization": "Bearer s3cret"}, "s3cret")
    assert bearer_valid({"Authorization": "bearer s3cret"}, "s3cret")
    assert not bearer_valid({"Authorization": "Bearer s3cre"}, "s3cret")
    assert not bearer_valid({"Authorization": "Basic s3cret"}, "s3cret")
    assert not bearer_valid({}, "s3cret")
    assert not bearer_valid({"Authorization": "Bearer "}, "")


def _stored(name: str, routed: str = "s", **labels: str) -> StoredAlert:
    """An alert routed to the service `routed` (bot.alerts.routing), with `labels`."""
    labels = {"alertname": name, **labels}
    return StoredAlert(1, routed, name, "P1", "firing", labels, {}, [], None)


def test_silence_matchers_are_the_labels_each_alert_name_shares() -> None:
    sets = matcher_sets(
        [
            _stored("A", service="s", pod="1"),
            _stored("A", service="s", pod="2"),
            _stored("B", service="s"),
        ]
    )
    assert sets == [{"alertname": "A", "service": "s"}, {"alertname": "B", "service": "s"}]


def test_silence_matchers_never_span_services() -> None:
    """A storm incident's batch: one name, several services (and alerts naming none)."""
    sets = matcher_sets(
        [
            _stored("Down", "a", service="a", severity="critical"),
            _stored("Down", "b", service="b", severity="critical"),
            _stored("Down", "-", severity="critical"),
        ],
        "service",
    )
    assert sets == [
        {"alertname": "Down", "service": "a", "severity": "critical"},
        {"alertname": "Down", "service": "b", "severity": "critical"},
        {"alertname": "Down", "service": "", "severity": "critical"},
    ]


def test_documented_alerts_policies_load() -> None:
    """The `alerts:` blocks users copy (README, chatops.example.yml) are valid."""
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    block = re.search(r"```yaml\n(alerts:\n.*?)```", readme, re.S)
    assert block is not None
    parsed = parse_policy(MINIMAL + block.group(1))
    assert parsed.alerts.alertmanager_url == "http://alertmanager:9093"
    assert [r.service for r in parsed.alerts.routes] == [None, None, "hosts"]
    assert parsed.alerts.storm.max_incidents == 5 and parsed.alerts.storm.window.seconds == 600
    example = (root / "chatops.example.yml").read_text()
    commented = re.search(r"# alerts:\n(?:#.*\n)+", example)
    assert commented is not None
    text = "\n".join(line[2:] for line in commented.group(0).splitlines()) + "\n"
    example_alerts = parse_policy(MINIMAL + text).alerts
    assert example_alerts.silence_for.seconds == 3600
    assert example_alerts.storm.window.seconds == 600


def test_a_blank_summary_leaves_the_alert_name_as_the_title() -> None:
    """A summary template over a missing label (`"{{ $labels.instance }} "`) renders as
    blanks: the incident was titled "checkout:" (or "(+1 more alerts)" with no service)."""
    blank = StoredAlert(
        1, "checkout", "HighErrorRate", "P1", "firing", {}, {"summary": "   "}, [], None
    )
    assert declaration("checkout", [blank]).title == "checkout: HighErrorRate"
    other = StoredAlert(2, NO_SERVICE, "DiskFull", "P1", "firing", {}, {}, [], None)
    assert declaration(NO_SERVICE, [blank, other]).title == "HighErrorRate (+1 more alerts)"


def test_policy_storm_guard_is_on_by_default_and_validated() -> None:
    storm = parse_policy(MINIMAL + "alerts: {token_env: T}\n").alerts.storm
    assert (storm.max_incidents, storm.window.seconds) == (5, 600)
    off = parse_policy(MINIMAL + "alerts: {token_env: T, storm: {max_incidents: 0}}\n")
    assert off.alerts.storm.max_incidents == 0
    with pytest.raises(ConfigError, match=r"alerts\.storm\.max_incidents"):
        parse_policy(MINIMAL + "alerts: {token_env: T, storm: {max_incidents: -1}}\n")
    with pytest.raises(ConfigError, match="more than 0 and at most 1d"):
        parse_policy(MINIMAL + "alerts: {token_env: T, storm: {window: 0}}\n")
    with pytest.raises(ConfigError, match="not business days"):
        parse_policy(MINIMAL + "alerts: {token_env: T, storm: {window: 1bd}}\n")
    with pytest.raises(ConfigError, match=r"alerts\.storm\.windw"):
        parse_policy(MINIMAL + "alerts: {token_env: T, storm: {windw: 10m}}\n")


def test_past_two_thousand_resolutions_are_taken_before_firing_alerts() -> None:
    """Our own cut must not lose a resolution (it is not sent again: its alert would stay
    firing); firing alerts past the cut are sent again at the next group interval."""
    firing = [alert(f"A{n}", "checkout", pod=f"p{n}") for n in range(100, 2100)]
    resolved = [alert(f"A{n}", "checkout", pod=f"p{n}", status="resolved") for n in range(100)]
    posted = read_alertmanager(_raw(webhook(firing + resolved)))
    assert posted.left_out == 100
    statuses = [a.status for a in posted.alerts]
    assert statuses.count("resolved") == 100 and statuses.count("firing") == 1900
    assert [a.name for a in posted.alerts][:2] == ["A100", "A101"]  # the post's order kept
    assert posted.alerts[1899].name == "A1999" and posted.alerts[-1].name == "A99"
