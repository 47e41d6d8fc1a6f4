"""Settings from the environment.

A missing or malformed value stops start-up with one line naming the variable (exit status 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError
from bot.redact import redact_text

SLACK_API_URL_DEFAULT = "https://slack.com/api/"

S = TypeVar("S", bound="StoreSettings")


class StoreSettings(BaseSettings):
    """What the offline commands (migrate, audit, console) need: no Slack credentials."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=True, extra="ignore")

    DATABASE_URL: str = "sqlite:///chatops.db"
    # PostgreSQL connections per process, and how long accepted work waits for one (or, on
    # SQLite, for the write lock) before it is refused as busy: load waits, it is no outage.
    DATABASE_POOL_SIZE: int = Field(default=10, ge=1, le=100)
    DATABASE_QUEUE_SECONDS: float = Field(default=60.0, gt=0, le=900)
    # Off behind a transaction-pooling PgBouncer: a statement prepared on one server
    # connection is unknown on the next (see README, "Behind PgBouncer").
    DATABASE_PREPARE: bool = True
    REDIS_URL: str | None = None
    CHATOPS_POLICY: Path | None = None

    @field_validator("DATABASE_URL")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if value.startswith("sqlite://"):
            return value
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        check_postgres_url(value)
        return value

    @field_validator("REDIS_URL")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis:// or rediss://")
        check_redis_url(value)
        return value

    @field_validator("CHATOPS_POLICY", mode="before")
    @classmethod
    def _policy_path(cls, value: object) -> object:
        return None if value in (None, "") else value


def check_redis_url(url: str) -> None:
    """Raise ValueError (never echoing a password) unless redis-py can read `url`: a port
    that is not a number ended start-up in a traceback, and a database that is not a number
    was taken to be database 0, shared with whatever else uses it."""
    from urllib.parse import urlsplit

    from redis.connection import parse_url

    try:
        parse_url(url)  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
    except ValueError as exc:
        raise ValueError(redact_text(str(exc))) from None
    parts = urlsplit(url)
    database = parts.path.strip("/") if parts.scheme != "unix" else ""
    if database and not database.isdigit():
        raise ValueError(f"the database {database[:20]!r} is not a number (redis://host:6379/0)")


SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def check_postgres_url(url: str) -> None:
    """Raise ValueError (never echoing a password) unless libpq can use `url` as written."""
    # Imported here: a bot on SQLite never loads psycopg (about 11 MB).
    from psycopg import Error as PsycopgError
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url)
    except PsycopgError as exc:
        reason = str(exc).strip().splitlines()[0].split(" in URI:")[0]
        raise ValueError(f"not a valid PostgreSQL URL: {redact_text(reason)}") from None
    for port in str(params.get("port") or "").split(","):
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"port {port!r} is not a number from 1 to 65535")
    timeout = str(params.get("connect_timeout") or "0")
    if not timeout.isdigit():
        raise ValueError(f"connect_timeout {timeout!r} is not a whole number of seconds")
    # libpq checks it only as it connects: a typo was reported as "PostgreSQL is unavailable".
    sslmode = str(params.get("sslmode") or "prefer")
    if sslmode not in SSLMODES:
        raise ValueError(f"sslmode {sslmode[:20]!r} is not one of {', '.join(SSLMODES)}")


class Settings(StoreSettings):
    """Everything the bot reads from its environment."""

    SLACK_BOT_TOKEN: str = Field(min_length=1)
    SLACK_SIGNING_SECRET: str = Field(min_length=1)
    SLACK_APP_TOKEN: str | None = None
    SLACK_API_URL: str = SLACK_API_URL_DEFAULT
    # How often each process sweeps the store for reminders due (or planned elsewhere).
    ESCALATION_SWEEP_SECONDS: float = Field(default=5.0, gt=0, le=300)
    # How long a handled Slack request is remembered (retries come within minutes).
    DEDUP_RETENTION_SECONDS: float = Field(default=86_400.0, ge=3_600, le=90 * 86_400)
    # Whose App Home an incident change refreshes: who opened it within these days.
    HOME_VIEWER_DAYS: float = Field(default=7.0, ge=1, le=365)
    # Slack's documented rate limits times this (tests and benchmarks run Slack's clock
    # faster against the double; 1 against Slack).
    SLACK_PACE_SCALE: float = Field(default=1.0, gt=0, le=1000)
    # How often the status page asks the store whether a public fact changed (its hits
    # between two checks are served from memory).
    STATUS_REFRESH_SECONDS: float = Field(default=5.0, ge=0, le=300)
    # What one HTTP client may take of the server (bot.serving): connections open at once
    # (fewer if the open-files limit is low), seconds idle, seconds to send the headers and
    # then the body, the request line and each header, the number of headers, the body.
    HTTP_MAX_CONNECTIONS: int = Field(default=1000, ge=8, le=100_000)
    HTTP_IDLE_SECONDS: float = Field(default=75.0, gt=0, le=3600)
    HTTP_HEADER_SECONDS: float = Field(default=10.0, gt=0, le=300)
    HTTP_BODY_SECONDS: float = Field(default=10.0, gt=0, le=300)
    HTTP_MAX_HEADER_BYTES: int = Field(default=8190, ge=1024, le=65_536)
    HTTP_MAX_HEADERS: int = Field(default=64, ge=16, le=1000)
    HTTP_MAX_BODY_BYTES: int = Field(default=1024 * 1024, ge=64 * 1024, le=64 * 1024 * 1024)

    @field_validator("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", mode="before")
    @classmethod
    def _trimmed(cls, value: object) -> object:
        # A Secret made from a file keeps the file's last newline: the signing secret then
        # refused every request (401) and the token every call, with nothing said at start-up.
        return value.strip() if isinstance(value, str) else value

    @field_validator("SLACK_BOT_TOKEN")
    @classmethod
    def _bot_token(cls, value: str) -> str:
        if not value.startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        return value

    @field_validator("SLACK_APP_TOKEN")
    @classmethod
    def _app_token(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp-")
        return value

    @field_validator("SLACK_API_URL")
    @classmethod
    def _api_url(cls, value: str) -> str:
        from urllib.parse import urlsplit

        example = "must be an http(s) URL such as https://slack.com/api/"
        if not value.startswith(("http://", "https://")):
            raise ValueError(example)
        # `http://` or a host with a space in it started a bot whose every Slack call failed.
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018  (read for its ValueError: a port that is not a number)
        except ValueError:
            raise ValueError(example) from None
        if not parts.hostname or any(c.isspace() for c in value):
            raise ValueError(f"{example} (no host in {value[:60]!r})")
        return value if value.endswith("/") else value + "/"

    @property
    def socket_mode(self) -> bool:
        return self.SLACK_APP_TOKEN is not None


def load_settings(model: type[S] = Settings, **overrides: Any) -> S:  # type: ignore[assignment]  # mypy cannot tie a TypeVar default to its bound
    """Read settings from the environment; raise ConfigError naming the first bad variable."""
    try:
        return model(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else "environment"
        if error["type"] == "missing":
            raise ConfigError(f"{name} is not set") from None
        message = error["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{name} is malformed: {message}") from None
