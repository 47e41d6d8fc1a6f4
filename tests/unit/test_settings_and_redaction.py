from __future__ import annotations

import pytest

from bot.errors import ConfigError
from bot.redact import redact, redact_text
from bot.settings import Settings, StoreSettings, load_settings

GOOD = {"SLACK_BOT_TOKEN": "xoxb-1-2", "SLACK_SIGNING_SECRET": "s3cret"}


def _env(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "SLACK_API_URL",
        "DATABASE_URL",
        "DATABASE_PREPARE",
        "REDIS_URL",
        "CHATOPS_POLICY",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, GOOD)
    settings = load_settings(Settings)
    assert settings.DATABASE_URL == "sqlite:///chatops.db"
    assert settings.SLACK_API_URL == "https://slack.com/api/"
    assert settings.REDIS_URL is None and settings.CHATOPS_POLICY is None
    assert not settings.socket_mode


def test_slack_secrets_from_a_file_lose_its_last_newline(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(
        monkeypatch,
        {
            "SLACK_BOT_TOKEN": "xoxb-1-2\n",
            "SLACK_SIGNING_SECRET": " s3cret\r\n",
            "SLACK_APP_TOKEN": "xapp-1\n",
        },
    )
    settings = load_settings(Settings)
    assert (settings.SLACK_BOT_TOKEN, settings.SLACK_SIGNING_SECRET) == ("xoxb-1-2", "s3cret")
    assert settings.SLACK_APP_TOKEN == "xapp-1"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SLACK_SIGNING_SECRET": "x"}, "SLACK_BOT_TOKEN is not set"),
        ({**GOOD, "SLACK_BOT_TOKEN": "xoxp-user"}, "SLACK_BOT_TOKEN is malformed"),
        ({**GOOD, "SLACK_SIGNING_SECRET": " \n"}, "SLACK_SIGNING_SECRET is malformed"),
        ({**GOOD, "SLACK_APP_TOKEN": "xoxb-no"}, "SLACK_APP_TOKEN is malformed"),
        ({**GOOD, "SLACK_API_URL": "slack.com"}, "SLACK_API_URL is malformed"),
        ({**GOOD, "DATABASE_URL": "mysql://x"}, "DATABASE_URL is malformed"),
        ({**GOOD, "REDIS_URL": "localhost:6379"}, "REDIS_URL is malformed"),
        ({**GOOD, "DATABASE_PREPARE": "pgbouncer"}, "DATABASE_PREPARE is malformed"),
    ],
)
def test_bad_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    _env(monkeypatch, env)
    with pytest.raises(ConfigError) as caught:
        load_settings(Settings)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis://:pw@h:notaport/0", "Port could not be cast to integer"),
        ("redis://:pw@h:99999/0", "Port out of range"),
        ("redis://:pw@h:6379/zero", "the database 'zero' is not a number"),
        ("redis://:pw@h:6379/0?socket_timeout=soon", "Invalid value for 'socket_timeout'"),
    ],
)
def test_a_redis_url_redis_cannot_read_is_malformed(
    monkeypatch: pytest.MonkeyPatch, url: str, reason: str
) -> None:
    """A port that is not a number ended start-up in a traceback (exit 1); a database that
    is not a number was taken to be 0."""
    _env(monkeypatch, {**GOOD, "REDIS_URL": url})
    with pytest.raises(ConfigError) as caught:
        load_settings(Settings)
    message = str(caught.value)
    assert message.startswith("REDIS_URL is malformed: ") and reason in message, message
    assert "pw" not in message


@pytest.mark.parametrize(
    "url", ["redis://h:6379/0", "rediss://:pw@h/3?ssl_cert_reqs=none", "unix:///run/redis.sock"]
)
def test_redis_urls_as_documented_are_accepted(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    _env(monkeypatch, {**GOOD, "REDIS_URL": url})
    assert load_settings(Settings).REDIS_URL == url


@pytest.mark.parametrize(
    "url", ["http://", "https:///api/", "http://slack .com/api/", "https://slack.com:api/"]
)
def test_a_slack_api_url_without_a_host_is_malformed(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """These started a bot whose every Slack call then failed."""
    _env(monkeypatch, {**GOOD, "SLACK_API_URL": url})
    with pytest.raises(ConfigError, match=r"^SLACK_API_URL is malformed: must be an http\(s\) URL"):
        load_settings(Settings)


def test_a_database_url_with_an_unknown_sslmode_is_malformed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """libpq checks sslmode only as it connects: a typo stopped start-up as "PostgreSQL is
    unavailable", exit 1, sending the operator to look at a database that was fine."""
    _env(monkeypatch, {**GOOD, "DATABASE_URL": "postgresql://u:pw@h/db?sslmode=requir"})
    with pytest.raises(ConfigError) as caught:
        load_settings(Settings)
    assert str(caught.value) == (
        "DATABASE_URL is malformed: sslmode 'requir' is not one of"
        " disable, allow, prefer, require, verify-ca, verify-full"
    )
    _env(monkeypatch, {**GOOD, "DATABASE_URL": "postgresql://u:pw@h/db?sslmode=verify-full"})
    assert load_settings(Settings).DATABASE_URL.endswith("verify-full")


@pytest.mark.parametrize(("value", "prepare"), [("off", False), ("false", False), ("on", True)])
def test_database_prepare_reads_on_and_off(
    monkeypatch: pytest.MonkeyPatch, value: str, prepare: bool
) -> None:
    _env(monkeypatch, {"DATABASE_PREPARE": value})
    assert load_settings(StoreSettings).DATABASE_PREPARE is prepare
    _env(monkeypatch, {})
    assert load_settings(StoreSettings).DATABASE_PREPARE is True  # the default


def test_store_settings_need_no_slack(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, {"DATABASE_URL": "postgresql://u@h/db", "SLACK_API_URL": "x"})
    assert load_settings(StoreSettings).DATABASE_URL == "postgresql://u@h/db"


def test_socket_mode_and_api_url(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, {**GOOD, "SLACK_APP_TOKEN": "xapp-1", "SLACK_API_URL": "http://x/api"})
    settings = load_settings(Settings)
    assert settings.socket_mode and settings.SLACK_API_URL == "http://x/api/"


def test_redaction() -> None:
    text = "dsn postgresql://app:hunter2@db:5432/x token xoxb-123-456-abc key AKIAABCDEFGHIJKLMNOP"
    cleaned = redact_text(text)
    for secret in ("hunter2", "xoxb-123", "AKIAABCDEFGHIJKLMNOP"):
        assert secret not in cleaned
    assert "postgresql://app:***@db:5432/x" in cleaned
    assert redact({"password": "p", "nested": [{"api_key": "k", "note": "redis://:pw@h"}]}) == {
        "password": "***",
        "nested": [{"api_key": "***", "note": "redis://:***@h"}],
    }
