"""Paging settings, webhook verification and parsing, and the redaction of their secrets."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
import yaml

from bot.app import build_client
from bot.errors import ConfigError
from bot.paging.webhooks import (
    WebhookRefused,
    opsgenie_secret_valid,
    pagerduty_signature_valid,
    read_opsgenie,
    read_pagerduty,
)
from bot.policy import default_policy_text, parse_policy
from bot.redact import redact, redact_text, register_secret
from bot.services import build_services
from bot.slack.notifier import SlackNotifier
from bot.store.sqlite import SqliteStore

SECRET = "whsec-0123456789"


def _signed(raw: bytes, secret: str = SECRET) -> str:
    return "v1=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def test_a_pagerduty_signature_must_be_the_hmac_of_the_raw_body() -> None:
    raw = b'{"event": {}}'
    assert pagerduty_signature_valid(raw, {"X-PagerDuty-Signature": _signed(raw)}, SECRET)
    # Rotation: several signatures, one valid is enough.
    both = f"{_signed(raw, 'old-secret')}, {_signed(raw)}"
    assert pagerduty_signature_valid(raw, {"X-PagerDuty-Signature": both}, SECRET)
    assert not pagerduty_signature_valid(
        raw + b" ", {"X-PagerDuty-Signature": _signed(raw)}, SECRET
    )
    assert not pagerduty_signature_valid(raw, {"X-PagerDuty-Signature": _signed(raw, "x")}, SECRET)
    assert not pagerduty_signature_valid(raw, {}, SECRET)
    unversioned = _signed(raw).replace("v1=", "v0=")
    assert not pagerduty_signature_valid(raw, {"X-PagerDuty-Signature": unversioned}, SECRET)


def test_the_opsgenie_secret_header_must_match() -> None:
    assert opsgenie_secret_valid({"X-ChatOps-Webhook-Secret": SECRET}, SECRET)
    assert not opsgenie_secret_valid({"X-ChatOps-Webhook-Secret": SECRET[:-1]}, SECRET)
    assert not opsgenie_secret_valid({}, SECRET)


def _pd_body(event_type: str, key: str | None = "INC-20261127-001") -> bytes:
    return json.dumps(
        {
            "event": {
                "id": "01ABC",
                "event_type": event_type,
                "resource_type": "incident",
                "occurred_at": "2026-11-27T14:05:00Z",
                "agent": {"id": "PJANE01", "type": "user_reference", "summary": "Jane Doe"},
                "data": {"id": "Q1", "type": "incident", "incident_key": key},
            }
        }
    ).encode()


def test_only_pagerduty_acknowledgements_of_keyed_incidents_are_read() -> None:
    ack = read_pagerduty(_pd_body("incident.acknowledged"))
    assert ack is not None
    assert (ack.incident_id, ack.person_id, ack.person_name) == (
        "INC-20261127-001",
        "PJANE01",
        "Jane Doe",
    )
    assert read_pagerduty(_pd_body("incident.resolved")) is None
    assert read_pagerduty(_pd_body("incident.acknowledged", key=None)) is None
    with pytest.raises(WebhookRefused):
        read_pagerduty(b'{"event": {"id": "x"}}')
    with pytest.raises(WebhookRefused):
        read_pagerduty(b"not json")


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("agent", "../../oncalls?x=1"),
        ("agent", "P1%2F.."),
        ("agent", ".."),
        ("event", "01ABC/../x"),
        ("event", "x" * 129),
    ],
)
def test_ids_in_a_pagerduty_webhook_are_shape_checked(where: str, value: str) -> None:
    body = json.loads(_pd_body("incident.acknowledged"))
    target = body["event"]["agent"] if where == "agent" else body["event"]
    target["id"] = value
    with pytest.raises(WebhookRefused, match=f"event.{'agent.' if where == 'agent' else ''}id"):
        read_pagerduty(json.dumps(body).encode())


def test_ids_in_an_opsgenie_webhook_are_shape_checked() -> None:
    alert = {"alertId": "a1", "alias": "INC-20261127-002", "userId": "u/../x"}
    with pytest.raises(WebhookRefused, match=r"alert\.userId: Value error, not an identifier"):
        read_opsgenie(json.dumps({"action": "Acknowledge", "alert": alert}).encode())
    alert |= {"userId": "4513b7ea-3b91-438f-b7e4-e3e54af9147c", "alertId": "a\x00"}
    with pytest.raises(WebhookRefused, match=r"alert\.alertId"):
        read_opsgenie(json.dumps({"action": "Acknowledge", "alert": alert}).encode())


def test_opsgenie_acknowledgements_carry_the_alias_and_the_username() -> None:
    body = {
        "action": "Acknowledge",
        "alert": {"alertId": "a1", "alias": "INC-20261127-002", "username": "jane@example.com"},
    }
    ack = read_opsgenie(json.dumps(body).encode())
    assert ack is not None and ack.person_email == "jane@example.com"
    assert ack.incident_id == "INC-20261127-002"
    body["action"] = "Close"
    assert read_opsgenie(json.dumps(body).encode()) is None
    with pytest.raises(WebhookRefused):
        read_opsgenie(b'{"action": "Acknowledge"}')


def _policy(paging: dict | None, notify: list[str]) -> str:
    data = yaml.safe_load(default_policy_text())
    if paging is not None:
        data["paging"] = paging
    data["escalation"] = {"P1": [{"after": 0, "notify": notify}]}
    return yaml.safe_dump(data)


def test_a_level_may_name_a_configured_paging_service() -> None:
    policy = parse_policy(
        _policy({"pagerduty": {"routing_key_env": "PD_KEY"}}, ["U0ONCALL", "pagerduty"])
    )
    [level] = policy.escalation["P1"]
    assert level.slack_targets == ["U0ONCALL"] and level.providers == ["pagerduty"]
    # The providers' own URLs by default.
    assert policy.paging.pagerduty is not None
    assert policy.paging.pagerduty.events_url == "https://events.pagerduty.com"
    assert policy.paging.pagerduty.api_url == "https://api.pagerduty.com"


@pytest.mark.parametrize(
    ("paging", "notify", "message"),
    [
        (None, ["pagerduty"], "'pagerduty' is named but paging.pagerduty is not configured"),
        (None, ["pagerdoody"], "is not a Slack user (U...), user group (S...) or paging service"),
        ({"pagerduty": {"routing_key_env": "pd key"}}, ["U0A1"], "not an environment variable"),
        ({"pagerduty": {"routing_key": "R123"}}, ["U0A1"], "unknown setting"),
        (
            {"pagerduty": {"routing_key_env": "K", "schedule": "P0SCHED"}},
            ["U0A1"],
            "need api_key_env",
        ),
        ({"opsgenie": {"api_key_env": "K", "api_url": "api.eu"}}, ["U0A1"], "http(s) URL"),
    ],
)
def test_paging_settings_are_checked(paging: dict | None, notify: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_policy(_policy(paging, notify))
    assert message in str(caught.value)


def test_paging_secrets_are_redacted_wherever_they_appear() -> None:
    register_secret("R0UTINGKEY-unit-test-0000")
    assert "R0UTINGKEY" not in redact_text("refused key R0UTINGKEY-unit-test-0000!")
    assert redact({"routing_key": "abc", "note": "x"}) == {"routing_key": "***", "note": "x"}
    assert redact_text("Authorization: GenieKey 1234-abcd") == "Authorization: GenieKey ***"
    assert redact_text("Authorization: Token token=y_BxZ1") == "Authorization: Token token=***"
    # A short one is masked too (it was printed whole), where it stands on its own; inside a
    # longer word it is not that secret, and the word stays whole.
    register_secret("q7Zx")
    assert redact_text("key=q7Zx; sent 'q7Zx'") == "key=***; sent '***'"
    assert redact_text("q7Zxy and xq7Zx stay") == "q7Zxy and xq7Zx stay"
    register_secret("   ")  # blank: nothing to mask
    assert redact_text("a   note") == "a   note"


def test_every_paging_secret_is_masked_even_when_start_up_stops_on_a_missing_one(
    tmp_path: Path,
) -> None:
    """The settings' list of secret variables (`secret_env_names`) is what gets registered,
    all of it before any is checked: the routing key missing stopped start-up before the
    webhook secret and Opsgenie's key, both set, were masked."""
    paging = {
        "pagerduty": {"routing_key_env": "PD_ROUTING_UNSET", "webhook_secret_env": "PD_HOOK"},
        "opsgenie": {"api_key_env": "OG_KEY"},
    }
    policy = parse_policy(_policy(paging, ["U0A1", "pagerduty"]))
    env = {"PD_HOOK": "pd-hook-secret-unit-5678", "OG_KEY": "og-api-key-unit-1234"}
    with pytest.raises(ConfigError, match="PD_ROUTING_UNSET is not set"):
        build_services(
            policy=policy,
            store=SqliteStore(f"sqlite:///{tmp_path}/unused.db"),  # never opened
            notifier=SlackNotifier(build_client("xoxb-unused", "http://127.0.0.1:9/api/")),
            env=env,
        )
    assert redact_text("og-api-key-unit-1234 / pd-hook-secret-unit-5678") == "*** / ***"
