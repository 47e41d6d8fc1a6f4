"""`paging:` in the policy: PagerDuty and Opsgenie, named by escalation levels.

Secrets are only ever given by the *name* of an environment variable (`routing_key_env`);
the URLs default to the providers' own and exist so tests and EU accounts can point elsewhere.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from bot.schema import Strict

PAGERDUTY = "pagerduty"
OPSGENIE = "opsgenie"
PROVIDERS: tuple[str, ...] = (PAGERDUTY, OPSGENIE)
Provider = Literal["pagerduty", "opsgenie"]
PROVIDER_NAMES = {PAGERDUTY: "PagerDuty", OPSGENIE: "Opsgenie"}

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Identifiers a provider's webhook carries, checked before they are stored or reach a URL:
# PagerDuty's object IDs (`PXPGF42`), and any provider's event, alert and user IDs (UUIDs,
# Opsgenie's `<uuid>-<millis>`). Nothing else: `/`, `.`-only, `?`, `%` never pass.
PAGERDUTY_ID = re.compile(r"^[A-Za-z0-9]{1,64}$")
PROVIDER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(f"'{value[:60]}' is not an environment variable name")
    return value


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"'{value[:60]}' is not an http(s) URL")
    return value.rstrip("/")


EnvName = Annotated[str, AfterValidator(_env_name)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]


class PagerDutyConfig(Strict):
    """PagerDuty: Events API v2 for pages, REST API for who is on call and who acknowledged."""

    routing_key_env: EnvName
    api_key_env: EnvName | None = None
    webhook_secret_env: EnvName | None = None
    schedule: str | None = None
    escalation_policy: str | None = None
    events_url: HttpUrl = "https://events.pagerduty.com"
    api_url: HttpUrl = "https://api.pagerduty.com"

    @model_validator(mode="after")
    def _oncall_needs_api_key(self) -> PagerDutyConfig:
        if (self.schedule or self.escalation_policy) and not self.api_key_env:
            raise ValueError("schedule and escalation_policy need api_key_env (the REST API)")
        return self


class OpsgenieConfig(Strict):
    """Opsgenie: the Alert API for pages, the Schedule API for who is on call."""

    api_key_env: EnvName
    webhook_secret_env: EnvName | None = None
    team: str | None = None
    schedule: str | None = None
    api_url: HttpUrl = "https://api.opsgenie.com"


class PagingConfig(Strict):
    """Which paging services escalation levels may name, and how to reach them."""

    pagerduty: PagerDutyConfig | None = None
    opsgenie: OpsgenieConfig | None = None
    # How long "who is on call now" is remembered (seconds).
    oncall_cache_seconds: float = Field(default=60.0, ge=0, le=3600)
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    def configured(self) -> tuple[str, ...]:
        """The providers set up here, in a fixed order."""
        return tuple(name for name in PROVIDERS if getattr(self, name) is not None)

    def secret_env_names(self) -> list[str]:
        """Every environment variable named as a secret (for redaction)."""
        names: list[str] = []
        if self.pagerduty is not None:
            pd = self.pagerduty
            names += [pd.routing_key_env, pd.api_key_env or "", pd.webhook_secret_env or ""]
        if self.opsgenie is not None:
            names += [self.opsgenie.api_key_env, self.opsgenie.webhook_secret_env or ""]
        return [name for name in names if name]
