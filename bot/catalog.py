"""The service catalog (`services:` in the policy): the only systems the bot may reach.

Each entry names HTTP endpoints, a PostgreSQL and a Redis (by the *name* of the environment
variable holding the connection string, never inline), a Kubernetes context and namespace,
AWS resources in one region, and a Prometheus with the entry's queries. Thresholds default to
the runbook's; each may be overridden per service as `{warn, crit}` or as one number, the
warning level (the default critical level is kept when it still lies beyond the new warning
level).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from bot.durations import Duration
from bot.redact import redact_text
from bot.schema import Strict
from bot.sqltext import PLACEHOLDERS, QueryTextMode

# What a message listing the catalogued services says when there are none: where to add them.
NO_SERVICES = (
    "none: the policy has no service catalog yet (`services:` in the policy file that "
    "CHATOPS_POLICY names; `examples/shop.yml` is one to start from)"
)

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SERVICE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


def _env_name(value: str, what: str) -> str:
    if "://" in value or "@" in value:
        raise ValueError(
            f"give the name of an environment variable holding the {what}, not the {what} itself"
        )
    if not _ENV_NAME.match(value):
        raise ValueError(f"'{value[:40]}' is not an environment variable name")
    return value


def _no_inline_secret(data: Any, key: str, instead: str) -> Any:
    if isinstance(data, dict) and key in data:
        raise ValueError(
            f"'{key}' is not allowed: a connection string only by environment variable "
            f"name ('{instead}')"
        )
    return data


class HttpCheck(Strict):
    url: str
    expect_status: int = Field(default=200, ge=100, le=599)
    timeout: Duration = Duration(seconds=5)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/@]+(/\S*)?$", value):
            shown = redact_text(value[:80])  # a password in the URL is not repeated back
            raise ValueError(f"'{shown}' is not an http(s) URL without credentials")
        return value


class PostgresTarget(Strict):
    dsn_env: str
    timeout: Duration = Duration(seconds=5)
    # Remediations leave superuser and replication backends alone unless these allow them.
    terminate_superuser: bool = False
    terminate_replication: bool = False
    # Other sessions' SQL in evidence, previews and the audit log: literals as placeholders
    # unless the entry opts in to verbatim text (bot/sqltext.py).
    show_query_text: QueryTextMode = PLACEHOLDERS

    @model_validator(mode="before")
    @classmethod
    def _no_dsn(cls, data: Any) -> Any:
        return _no_inline_secret(data, "dsn", "dsn_env")

    @field_validator("dsn_env")
    @classmethod
    def _name(cls, value: str) -> str:
        return _env_name(value, "DSN")


class RedisTarget(Strict):
    url_env: str
    timeout: Duration = Duration(seconds=5)

    @model_validator(mode="before")
    @classmethod
    def _no_url(cls, data: Any) -> Any:
        return _no_inline_secret(data, "url", "url_env")

    @field_validator("url_env")
    @classmethod
    def _name(cls, value: str) -> str:
        return _env_name(value, "URL")


class KubernetesTarget(Strict):
    """A namespace in one kubeconfig context (KUBECONFIG, else in-cluster when unset)."""

    context: str | None = None
    namespace: str = "default"
    deployments: list[str] = Field(default_factory=list)
    selector: str | None = None
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=10, ge=1)
    timeout: Duration = Duration(seconds=10)
    log_lines: int = Field(default=200, ge=10, le=5000)

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if not _K8S_NAME.match(value):
            raise ValueError(f"'{value[:63]}' is not a Kubernetes namespace name")
        return value

    @field_validator("deployments")
    @classmethod
    def _deployments(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _K8S_NAME.match(name):
                raise ValueError(f"'{name[:63]}' is not a Kubernetes deployment name")
        return value

    @model_validator(mode="after")
    def _replica_bounds(self) -> KubernetesTarget:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must not exceed max_replicas")
        return self


class EcsTarget(Strict):
    cluster: str
    service: str


class CloudWatchMetric(Strict):
    """One CloudWatch metric read over the last hour."""

    namespace: str
    name: str
    dimensions: dict[str, str] = Field(default_factory=dict)
    statistic: str = "Average"
    threshold: str = "cpu_pct"  # which threshold grades it

    @field_validator("statistic")
    @classmethod
    def _statistic(cls, value: str) -> str:
        allowed = {"Average", "Maximum", "Minimum", "Sum", "SampleCount"}
        if value not in allowed:
            raise ValueError(f"statistic must be one of {', '.join(sorted(allowed))}")
        return value


class AwsTarget(Strict):
    """AWS resources in one region; credentials and AWS_ENDPOINT_URL from boto3's chain."""

    region: str
    ecs: EcsTarget | None = None
    rds: str | None = None
    log_group: str | None = None
    log_filter: str = "ERROR"
    log_window: Duration = Duration(seconds=900)
    metrics: list[CloudWatchMetric] | None = None
    autoscaling_group: str | None = None
    timeout: Duration = Duration(seconds=10)

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not _REGION.match(value):
            raise ValueError(f"'{value[:30]}' is not an AWS region name (like eu-west-1)")
        return value

    def cloudwatch_metrics(self) -> list[CloudWatchMetric]:
        """The metrics named, or CPUUtilization of the ECS service (else the RDS instance)."""
        if self.metrics is not None:
            return self.metrics
        if self.ecs is not None:
            dims = {"ClusterName": self.ecs.cluster, "ServiceName": self.ecs.service}
            return [CloudWatchMetric(namespace="AWS/ECS", name="CPUUtilization", dimensions=dims)]
        if self.rds is not None:
            dims = {"DBInstanceIdentifier": self.rds}
            return [CloudWatchMetric(namespace="AWS/RDS", name="CPUUtilization", dimensions=dims)]
        return []


# One PromQL label matcher: name, operator, double-quoted value (escapes allowed).
_MATCHER = r'\s*[A-Za-z_][A-Za-z0-9_]*\s*(=|!=|=~|!~)\s*"(?:[^"\\]|\\.)*"\s*'
_SELECTOR = re.compile(rf"^\{{{_MATCHER}(,{_MATCHER})*,?\s*\}}$")
_QUERY_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_PROMETHEUS_OWN_CHECKS = frozenset({"targets", "alerts"})


class PrometheusQuery(Strict):
    """One PromQL instant query whose value is graded: higher is worse unless
    `lower_is_worse`; with several series the worst one grades the query."""

    name: str
    expr: str = Field(min_length=1, max_length=2000)
    warn: float
    crit: float | None = None
    unit: str = Field(default="", max_length=12)
    lower_is_worse: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _QUERY_NAME.match(value):
            raise ValueError(f"'{value[:40]}' is not a query name (like error_rate_pct)")
        if value in _PROMETHEUS_OWN_CHECKS:
            raise ValueError(f"'{value}' is the name of a check of its own; pick another")
        return value

    @model_validator(mode="after")
    def _crit_beyond_warn(self) -> PrometheusQuery:
        if self.crit is not None:
            wrong = self.crit > self.warn if self.lower_is_worse else self.crit < self.warn
            if wrong:
                side = "below" if self.lower_is_worse else "above"
                raise ValueError(f"{self.name}: crit ({self.crit:g}) must lie {side} warn")
        return self

    @property
    def band(self) -> Band:
        return Band(warn=self.warn, crit=self.crit)


class PrometheusTarget(Strict):
    """A Prometheus server: the entry's queries, its scrape targets (`up`) and its firing
    alerts (`ALERTS`), both narrowed by `selector` (default `{service="<name>"}`). A bearer
    token only by environment variable name."""

    url: str
    selector: str | None = None
    queries: list[PrometheusQuery] = Field(default_factory=list, max_length=20)
    token_env: str | None = None
    timeout: Duration = Duration(seconds=5)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return HttpCheck._http_url(value)

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: str | None) -> str | None:
        if value is not None and not _SELECTOR.match(value):
            raise ValueError(f"'{value[:80]}' is not a label selector like '{{job=\"checkout\"}}'")
        return value

    @field_validator("token_env")
    @classmethod
    def _token_name(cls, value: str | None) -> str | None:
        return None if value is None else _env_name(value, "token")

    @field_validator("queries")
    @classmethod
    def _unique(cls, value: list[PrometheusQuery]) -> list[PrometheusQuery]:
        names = [q.name for q in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"query names must differ: {', '.join(twice)}")
        return value

    def matchers(self, service: str) -> str:
        """The selector's matchers without braces, for `up{...}` and `ALERTS{...}`."""
        selector = self.selector or '{service="' + service + '"}'
        return selector.strip()[1:-1].strip().rstrip(",").strip()


class Band(Strict):
    """A warning level and, optionally, a critical one."""

    warn: float
    crit: float | None = None


# Metrics where a LOWER value is worse (a cache hit ratio): their critical level lies below.
LOWER_IS_WORSE = frozenset({"cache_hit_ratio_pct"})


class Thresholds(Strict):
    """The runbook's thresholds; each overridable as `{warn, crit}` or one number (warn)."""

    response_ms: Band = Band(warn=500, crit=1000)
    error_rate_pct: Band = Band(warn=1, crit=5)
    cpu_pct: Band = Band(warn=80, crit=95)
    memory_pct: Band = Band(warn=85, crit=95)
    disk_pct: Band = Band(warn=85, crit=95)
    db_connections_pct: Band = Band(warn=90, crit=98)
    cache_hit_ratio_pct: Band = Band(warn=80)
    long_query_s: Band = Band(warn=300)
    idle_in_transaction_s: Band = Band(warn=300, crit=1800)
    idle_connection_s: Band = Band(warn=1800)
    replication_lag_s: Band = Band(warn=30, crit=300)
    dead_tuple_pct: Band = Band(warn=20, crit=50)
    restarts: Band = Band(warn=3, crit=10)
    evicted_keys: Band = Band(warn=1)
    blocked_clients: Band = Band(warn=1)

    @model_validator(mode="before")
    @classmethod
    def _one_number_is_warn(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for key, value in data.items():
            field = cls.model_fields.get(key)
            if field is None or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            default: Band = field.default
            crit = default.crit
            if crit is not None:
                beyond = crit < value if key in LOWER_IS_WORSE else crit > value
                crit = crit if beyond else None
            out[key] = {"warn": value, "crit": crit}
        return out

    @model_validator(mode="after")
    def _crit_beyond_warn(self) -> Thresholds:
        for name in type(self).model_fields:
            band: Band = getattr(self, name)
            if band.crit is None:
                continue
            wrong = band.crit > band.warn if name in LOWER_IS_WORSE else band.crit < band.warn
            if wrong:
                side = "below" if name in LOWER_IS_WORSE else "above"
                raise ValueError(f"{name}: crit ({band.crit:g}) must lie {side} warn")
        return self


class AutoRecovery(Strict):
    """Restart an unhealthy deployment of the entry by itself, at most `max_restarts` times
    in `window`; then stop, declare (or update) an incident of `severity` and page a human.
    The service's deployments are checked every `check_every`."""

    restart_unhealthy: bool = False
    max_restarts: int = Field(default=3, ge=0, le=100)
    window: Duration = Duration(seconds=3600)
    check_every: Duration = Duration(seconds=60)
    severity: Literal["P0", "P1", "P2", "P3"] = "P2"

    @field_validator("window", "check_every")
    @classmethod
    def _positive(cls, value: Duration) -> Duration:
        if value.business_days or value.seconds <= 0:
            raise ValueError("must be a clock duration longer than 0 (like 90, 1m or 1h)")
        return value


class Service(Strict):
    """One entry of the service catalog: the only systems the bot may touch."""

    http: list[HttpCheck] = Field(default_factory=list)
    postgres: PostgresTarget | None = None
    redis: RedisTarget | None = None
    kubernetes: KubernetesTarget | None = None
    aws: AwsTarget | None = None
    prometheus: PrometheusTarget | None = None
    thresholds: Thresholds = Thresholds()
    auto_recovery: AutoRecovery = AutoRecovery()

    @model_validator(mode="after")
    def _recovery_needs_deployments(self) -> Service:
        if self.auto_recovery.restart_unhealthy and not (
            self.kubernetes and self.kubernetes.deployments
        ):
            raise ValueError(
                "auto_recovery.restart_unhealthy needs kubernetes.deployments to watch"
            )
        return self


def check_service_names(services: dict[str, Service]) -> dict[str, Service]:
    """Service names are typed in `/diagnose <service>`: short, lowercase, no spaces."""
    for name in services:
        if not _SERVICE_NAME.match(name):
            raise ValueError(
                f"'{name[:40]}' is not a service name (lowercase letters, digits, '-', '_', '.')"
            )
    return services
