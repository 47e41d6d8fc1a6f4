"""The catalog's `prometheus:` entry: its selector scopes `up` and `ALERTS` (default the
service's name), its queries are named and levelled, its token only by environment name."""

from __future__ import annotations

import pytest

from bot.catalog import PrometheusTarget
from bot.errors import ConfigError
from tests.diagnostics_helpers import policy_with

URL = "http://prometheus.internal:9090"


def test_the_selector_defaults_to_the_service_label() -> None:
    assert PrometheusTarget(url=URL).matchers("checkout") == 'service="checkout"'
    given = PrometheusTarget(url=URL, selector='{ job="checkout", env=~"prod|eu" , }')
    assert given.matchers("checkout") == 'job="checkout", env=~"prod|eu"'
    escaped = PrometheusTarget(url=URL, selector=r'{path="a\"b"}')
    assert escaped.matchers("x") == r'path="a\"b"'


@pytest.mark.parametrize(
    "selector",
    [
        'job="checkout"',  # no braces
        "{job=checkout}",  # unquoted value
        "{}",  # matches every target of every service
        '{job="a"} or vector(1)',  # PromQL smuggled in
        '{job="a"}}',
        r'{job="a\"}',  # the closing quote escaped
    ],
)
def test_a_selector_that_is_not_label_matchers_is_refused(selector: str) -> None:
    with pytest.raises(ConfigError, match="is not a label selector"):
        policy_with({"svc": {"prometheus": {"url": URL, "selector": selector}}})


@pytest.mark.parametrize(
    ("prometheus", "message"),
    [
        ({"url": "http://admin:pw@prom:9090"}, "without credentials"),
        ({"url": URL, "token_env": "Bearer abc@x"}, "not the token itself"),
        ({"url": URL, "queries": [{"name": "Error Rate", "expr": "x", "warn": 1}]}, "query name"),
        ({"url": URL, "queries": [{"name": "targets", "expr": "x", "warn": 1}]}, "of its own"),
        ({"url": URL, "queries": [{"name": "p99", "expr": "x", "warn": 5, "crit": 1}]}, "above"),
        (
            {
                "url": URL,
                "queries": [
                    {"name": "hit", "expr": "x", "warn": 80, "crit": 90, "lower_is_worse": True}
                ],
            },
            "below",
        ),
        (
            {"url": URL, "queries": [{"name": "a", "expr": "x", "warn": 1}] * 2},
            "names must differ: a",
        ),
        ({"url": URL, "queries": [{"name": "a", "expr": "", "warn": 1}]}, "at least 1"),
        ({"url": URL, "queries": [{"name": "a", "expr": "x"}]}, "warn"),
    ],
)
def test_prometheus_entry_errors_are_named(prometheus: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        policy_with({"svc": {"prometheus": prometheus}})
