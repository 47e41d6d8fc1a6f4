"""The service catalog: thresholds as {warn, crit} or one number, secrets only by env name,
and the advisor's decision tree on graded findings."""

from __future__ import annotations

import pytest

from bot.catalog import Band, Service, Thresholds
from bot.diagnostics.advisor import advise, describe
from bot.diagnostics.findings import Finding, Grade
from bot.errors import ConfigError
from tests.diagnostics_helpers import policy_with


def test_one_number_is_the_warning_level_and_keeps_a_crit_beyond_it() -> None:
    t = Thresholds.model_validate({"response_ms": 800, "long_query_s": 60, "cpu_pct": 97})
    assert t.response_ms == Band(warn=800, crit=1000)
    assert t.long_query_s == Band(warn=60, crit=None)
    assert t.cpu_pct == Band(warn=97, crit=None)  # the default crit (95) is not beyond it
    assert Thresholds().idle_connection_s.warn == 1800 and Thresholds().long_query_s.warn == 300


def test_a_crit_on_the_wrong_side_is_refused() -> None:
    with pytest.raises(ValueError, match="crit"):
        Thresholds.model_validate({"cache_hit_ratio_pct": {"warn": 80, "crit": 90}})


@pytest.mark.parametrize(
    ("service", "message"),
    [
        ({"postgres": {"dsn": "postgresql://a:b@h/d"}}, "'dsn' is not allowed"),
        ({"redis": {"url_env": "redis://:pw@h"}}, "not the URL itself"),
        ({"http": [{"url": "https://user:pw@host/health"}]}, "without credentials"),
        ({"kubernetes": {"namespace": "Bad_NS"}}, "not a Kubernetes namespace"),
        ({"aws": {"region": "europe"}}, "not an AWS region"),
    ],
)
def test_catalog_errors_are_named(service: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        policy_with({"svc": service})
    assert "pw" not in str(caught.value).replace("without", "")


def test_service_names_are_typeable() -> None:
    with pytest.raises(ConfigError, match="not a service name"):
        policy_with({"Check Out": {}})


def _finding(check: str, grade: Grade, **facts: object) -> Finding:
    return Finding(check, check, grade, "summary", facts=facts)


def test_slow_answers_with_blocking_put_the_database_first() -> None:
    entry = Service.model_validate(
        {
            "postgres": {"dsn_env": "X"},
            "kubernetes": {"namespace": "shop", "deployments": ["api"], "max_replicas": 4},
        }
    )
    findings = [
        _finding("http", Grade.CRIT, latency_ms=2500.0, url="u"),
        _finding("kubernetes.cpu", Grade.CRIT, pct=97.0, deployment="api"),
        _finding("kubernetes.rollout", Grade.OK, deployment="api", desired=2, updated=2),
        _finding("postgres.blocking", Grade.WARN, blocking_pids=[4242]),
    ]
    suggestions = advise("shop", entry, findings)
    assert [s.action for s in suggestions] == ["postgres.terminate_backend", "kubernetes.scale"]
    assert suggestions[0].params == {"pid": 4242, "terminate": True}
    assert suggestions[0].finding == "postgres.blocking"
    assert suggestions[1].params == {"deployment": "api", "replicas": 3}
    # A button's value comes back from Slack: its meaning is re-derived from the catalog.
    assert describe("shop", entry, "kubernetes.restart", {"deployment": "other"}) is None
    assert describe("shop", entry, "kubernetes.restart", {"deployment": "api"}) == (
        "rollout restart of deployment shop/api"
    )


def test_slow_answers_with_nothing_else_point_at_network() -> None:
    suggestions = advise("s", Service(), [_finding("http", Grade.WARN, latency_ms=700.0)])
    assert [s.action for s in suggestions] == ["advice.check_network"]
    assert suggestions[0].advice is True
