"""`alerts:` in the policy: how alerts from monitors become incidents.

The bearer token is only ever given by the *name* of an environment variable (`token_env`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from bot.durations import Duration
from bot.policy.paging import EnvName, HttpUrl
from bot.schema import Strict

IncidentSeverity = Literal["P0", "P1", "P2", "P3"]
_RANK = {"P0": 0, "P1": 1, "P2": 2, "P3": 3}


def highest(severities: list[str]) -> str | None:
    """The most severe of `severities` (P0 before P3); None for none."""
    return min(severities, key=_RANK.__getitem__) if severities else None


_SEVERITIES: dict[str, IncidentSeverity] = {"critical": "P1", "warning": "P2", "info": "P3"}


class AlertRoute(Strict):
    """Label matchers (all must equal) and what they change; the first match wins."""

    match: dict[str, str] = Field(min_length=1, max_length=20)
    severity: IncidentSeverity | None = None
    ignore: bool = False
    service: str | None = Field(default=None, max_length=80)


class StormConfig(Strict):
    """How many incidents alerts may open within `window` before the rest of the services
    that would open one are folded into one storm incident; `max_incidents: 0` never folds."""

    max_incidents: int = Field(default=5, ge=0, le=1000)
    window: Duration = Duration(seconds=600)

    @field_validator("window")
    @classmethod
    def _window(cls, value: Duration) -> Duration:
        if value.business_days:
            raise ValueError("must be a clock duration (like 90, 15m, 1h), not business days")
        if not 0 < value.seconds <= 86400:
            raise ValueError("must be more than 0 and at most 1d")
        return value


class AlertsConfig(Strict):
    """Alerts in: the endpoints exist only when `token_env` is set."""

    token_env: EnvName | None = None
    service_label: str = Field(default="service", min_length=1, max_length=100)
    severity_label: str = Field(default="severity", min_length=1, max_length=100)
    severities: dict[str, IncidentSeverity] = Field(default_factory=lambda: dict(_SEVERITIES))
    routes: list[AlertRoute] = Field(default_factory=list, max_length=200)
    auto_diagnose: bool = True
    resolve_when_clear: bool = False
    # An alert firing again this soon after its incident was resolved reopens it.
    reopen_within: Duration = Duration(seconds=3600)
    # How long alerts gather before one message tells them all.
    batch_window: Duration = Duration(seconds=2)
    alertmanager_url: HttpUrl | None = None
    silence_for: Duration = Duration(seconds=3600)  # the Silence button's silences
    # A storm across many services opens one incident past the first few (bot.alerts.storm).
    storm: StormConfig = Field(default_factory=StormConfig)

    @field_validator("reopen_within", "batch_window", "silence_for")
    @classmethod
    def _clock_time(cls, value: Duration) -> Duration:
        if value.business_days:
            raise ValueError("must be a clock duration (like 90, 15m, 1h), not business days")
        return value

    @field_validator("batch_window")
    @classmethod
    def _short(cls, value: Duration) -> Duration:
        if value.seconds > 300:
            raise ValueError("must be at most 5m: alerts wait this long before Slack hears")
        return value

    @field_validator("silence_for")
    @classmethod
    def _positive(cls, value: Duration) -> Duration:
        if not 0 < value.seconds <= 7 * 86400:
            raise ValueError("must be more than 0 and at most 1w")
        return value

    @field_validator("severities")
    @classmethod
    def _lower_keys(cls, value: dict[str, str]) -> dict[str, str]:
        return {key.lower(): severity for key, severity in value.items()}

    @property
    def enabled(self) -> bool:
        return self.token_env is not None
