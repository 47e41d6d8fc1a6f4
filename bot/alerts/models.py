"""What monitors send, read at the edge into bounded pydantic models, then into `Alert`.

- Alertmanager's webhook, version 4 (`status`, `alerts[]` with `labels`, `annotations`,
  `startsAt`, `endsAt`, `fingerprint`, `generatorURL`; `groupKey`, `groupLabels`,
  `commonLabels`, `truncatedAlerts`).
- Grafana's alerting webhook: the same shape, its `version` "1", with extras (`orgId`,
  `title`, `state`, `silenceURL`, `dashboardURL`, `panelURL`, `values`...), which are read
  where useful.
- The generic JSON (README "Alerts in"): one alert or `{"alerts": [...]}` of
  `{title, service, severity, status, dedup_key, labels, links, started_at}`.

An alert is one occurrence: its `fingerprint` and `starts_at` together. Times keep
microseconds (Alertmanager sends nanoseconds; the rest is cut, the same way every time).

Every text is read without its control characters and bidirectional overrides: a NUL byte
cannot be stored in PostgreSQL, and refusing the post would lose every other alert of the
group for one label value. In a label value each is replaced by U+FFFD, one for one, so a
silence made from the value (bot.alerts.matchers) can still match Alertmanager's.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from bot import outside_json
from bot.text import marked_forbidden, without_forbidden

MAX_BODY_BYTES = 1024 * 1024
MAX_ALERTS = 2000
MAX_TRUNCATED = 1_000_000_000  # the `truncatedAlerts` a sender may say it left out
# Kubernetes alerts that join a pod's labels carry well over 64; a group refused for one of
# them was retried by Alertmanager for ever, every alert of it lost. The body's own limit
# (MAX_BODY_BYTES) bounds what this lets in.
_MAX_LABELS = 1000
MAX_VALUE = 4000  # a longer label value is cut (bot.alerts.matchers matches its start)

_MAX_URL = 2000


def _cut(value: object) -> object:
    return value[:MAX_VALUE] if isinstance(value, str) else value


def _short_url(value: object) -> object:
    # A link too long to show (a long PromQL expression in generatorURL) is left out.
    return "" if isinstance(value, str) and len(value) > _MAX_URL else value


Shown = AfterValidator(without_forbidden)  # control characters left out (see above)
Key = Annotated[str, Field(min_length=1, max_length=200), Shown]
# Over-long values are cut and over-long links left out, never refused (see above).
Value = Annotated[str, BeforeValidator(_cut), Shown]
# Cut, then each control character marked in place: its length tells a cut (MAX_VALUE), its
# marks where the value sent differs. Dropping them made a cut value shorter than MAX_VALUE
# (matched exactly, so never) and a cleaned one a value no alert has.
LabelValue = Annotated[str, BeforeValidator(_cut), AfterValidator(marked_forbidden)]
Labels = Annotated[dict[Key, LabelValue], Field(max_length=_MAX_LABELS)]
Annotations = Annotated[dict[Key, Value], Field(max_length=_MAX_LABELS)]
Url = Annotated[str, BeforeValidator(_short_url), Shown]

# The webhook versions each endpoint reads: Grafana's contact point sends "1" in the same
# shape as Alertmanager's "4" (and a Grafana pointed at Alertmanager's format, "4", reads alike).
VERSIONS = {"alertmanager": ("4",), "grafana": ("1", "4")}

FIRING = "firing"
RESOLVED = "resolved"
# Alertmanager's "no end yet" (Go's zero time) and anything before 1971 mean no time.
_ZERO_TIME = datetime(1971, 1, 1, tzinfo=UTC)
# The start a generic alert sent without `started_at` is recorded with (a time no alert has).
NO_START = _ZERO_TIME
_FRACTION = re.compile(r"(\.\d{6})\d+")


class AlertsRefused(Exception):
    """A body that cannot be read as alerts (answered 400 with this message)."""


def parse_time(value: str) -> datetime | None:
    """An RFC 3339 time (nanoseconds cut to microseconds) in UTC; None for Go's zero time."""
    text = _FRACTION.sub(r"\1", value.strip()).replace("Z", "+00:00").replace("z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{value[:40]}' is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:  # an offset that moves it past year 1 or 9999
        if parsed.year > 1:
            raise ValueError(f"'{value[:40]}' is out of range") from None
        return None  # Go's zero time written with an offset
    return None if parsed < _ZERO_TIME else parsed


class _Read(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class WebhookAlert(_Read):
    status: Literal["firing", "resolved"]
    labels: Labels
    annotations: Annotations = Field(default_factory=dict)
    startsAt: str = Field(max_length=64)
    endsAt: str = Field(default="", max_length=64)
    generatorURL: Url = ""
    fingerprint: Annotated[str, Field(max_length=128), Shown] = ""
    # Grafana's extras
    silenceURL: Url = ""
    dashboardURL: Url = ""
    panelURL: Url = ""
    valueString: Value = ""

    @field_validator("startsAt", "endsAt")
    @classmethod
    def _time(cls, value: str) -> str:
        if value:
            parse_time(value)
        return value


class AlertmanagerWebhook(_Read):
    """Alertmanager's webhook (version 4); Grafana's has the same shape (version 1)."""

    version: str = Field(default="4", max_length=10)
    status: Literal["firing", "resolved"]
    receiver: str = Field(default="", max_length=200)
    groupKey: str = Field(default="", max_length=2000)
    # No Alertmanager holds a billion alerts; a number past float's range raised out of the
    # left_out metric (a 500), and one within it stuck that counter for good.
    truncatedAlerts: int = Field(default=0, ge=0, le=MAX_TRUNCATED)
    groupLabels: Labels = Field(default_factory=dict)
    commonLabels: Labels = Field(default_factory=dict)
    externalURL: Url = ""
    # Not capped here: Alertmanager cannot split a group, so past MAX_ALERTS the rest are left
    # out (as its own `max_alerts` does) rather than the whole group refused on every resend.
    alerts: list[WebhookAlert]

    @field_validator("version")
    @classmethod
    def _version(cls, value: str, info: ValidationInfo) -> str:
        source = (info.context or {}).get("source", "alertmanager")
        if value not in VERSIONS[source]:
            raise ValueError(
                f"webhook version {value[:10]!r} is not supported"
                f" (version {' or '.join(VERSIONS[source])} is)"
            )
        return value


class Link(_Read):
    url: Url
    text: Annotated[str, Field(max_length=200), Shown] = ""


class GenericAlert(BaseModel):
    """The generic JSON for every other monitor (README "Alerts in")."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    title: Annotated[str, Field(min_length=1, max_length=300), Shown]
    service: Annotated[str, Field(max_length=100), Shown] = ""
    severity: Annotated[str, Field(max_length=50), Shown] = ""
    status: Literal["firing", "resolved"] = "firing"
    dedup_key: Annotated[str, Field(min_length=1, max_length=128), Shown]
    labels: Labels = Field(default_factory=dict)
    links: list[Link] = Field(default_factory=list, max_length=10)
    started_at: str = Field(default="", max_length=64)
    description: Value = ""

    @field_validator("started_at")
    @classmethod
    def _time(cls, value: str) -> str:
        if value:
            parse_time(value)
        return value


class GenericWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    alerts: list[GenericAlert] = Field(min_length=1, max_length=MAX_ALERTS)


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert occurrence, whatever sent it."""

    source: str  # alertmanager | grafana | generic
    fingerprint: str
    starts_at: datetime
    status: str  # firing | resolved
    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    ends_at: datetime | None = None
    links: tuple[tuple[str, str], ...] = ()  # (text, url)

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "") or self.annotations.get("title", "") or "alert"

    @property
    def summary(self) -> str:
        return self.annotations.get("summary", "") or self.annotations.get("title", "")

    @property
    def starts_key(self) -> str:
        """`starts_at` as the text of the unique key (microseconds, UTC)."""
        return self.starts_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _fingerprint(labels: dict[str, str]) -> str:
    # Alertmanager always sends one; a hand-made payload without one gets one from its labels.
    text = "\x00".join(f"{k}\x01{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Posted:
    """What one webhook post carried: its alerts (at most MAX_ALERTS), and how many alerts of
    the group it did not: the sender's own cut (Alertmanager's `truncatedAlerts`, under its
    `max_alerts`) and any past MAX_ALERTS."""

    alerts: list[Alert]
    left_out: int = 0


def _taken(alerts: list[WebhookAlert]) -> list[tuple[int, WebhookAlert]]:
    """The alerts a post's first MAX_ALERTS take, with their places in it: resolutions
    before firing alerts past the cut (a resolution left out is never sent again, so its
    alert would stay firing in our records), in the post's order."""
    if len(alerts) <= MAX_ALERTS:
        return list(enumerate(alerts))
    resolved = [i for i, item in enumerate(alerts) if item.status == "resolved"][:MAX_ALERTS]
    firing = [i for i, item in enumerate(alerts) if item.status != "resolved"]
    kept = sorted(resolved + firing[: MAX_ALERTS - len(resolved)])
    return [(i, alerts[i]) for i in kept]


def read_alertmanager(raw: bytes, *, source: str = "alertmanager") -> Posted:
    """The alerts of an Alertmanager (or Grafana) webhook body, the first MAX_ALERTS of them;
    AlertsRefused when unreadable."""
    try:
        webhook = AlertmanagerWebhook.model_validate_json(raw, context={"source": source})
    except ValidationError as exc:
        raise AlertsRefused(f"not an Alertmanager webhook: {first_error(exc)}") from None
    alerts = []
    for index, item in _taken(webhook.alerts):
        starts_at = parse_time(item.startsAt) if item.startsAt.strip() else None
        if starts_at is None:
            raise AlertsRefused(f"alerts.{index}.startsAt is missing (empty or zero time)")
        links = [("source", item.generatorURL), ("dashboard", item.dashboardURL)]
        links += [("panel", item.panelURL), ("silence", item.silenceURL)]
        annotations = dict(item.annotations)
        if item.valueString and "value" not in annotations:
            annotations["value"] = item.valueString[:500]
        alerts.append(
            Alert(
                source=source,
                fingerprint=item.fingerprint or _fingerprint(item.labels),
                starts_at=starts_at,
                status=item.status,
                labels=dict(item.labels),
                annotations=annotations,
                ends_at=parse_time(item.endsAt) if item.endsAt else None,
                links=tuple((text, url) for text, url in links if url),
            )
        )
    left_out = webhook.truncatedAlerts + max(0, len(webhook.alerts) - MAX_ALERTS)
    return Posted(alerts, left_out)


def read_generic(
    raw: bytes, *, service_label: str = "service", severity_label: str = "severity"
) -> list[Alert]:
    """The alerts of a generic body: one alert object, or `{"alerts": [...]}`."""
    try:
        data: Any = outside_json.loads(raw)
    except ValueError as exc:  # a lone surrogate and deep nesting too (bot.outside_json)
        raise AlertsRefused(f"the body is not JSON: {str(exc)[:120]}") from None
    try:
        if isinstance(data, dict) and "alerts" in data:
            items = list(GenericWebhook.model_validate(data).alerts)
        else:
            items = [GenericAlert.model_validate(data)]
    except ValidationError as exc:
        raise AlertsRefused(f"not a generic alert: {first_error(exc)}") from None
    alerts = []
    for item in items:
        labels = {"alertname": item.title[:200], **item.labels}
        # The top-level fields are the format's explicit ones: they win over labels of the
        # same name (a sender's generic `severity: info` label beside `severity: critical`),
        # the title over `alertname`.
        if item.title:
            labels["alertname"] = item.title[:200]
        if item.service:
            labels[service_label] = item.service
        if item.severity:
            labels[severity_label] = item.severity
        annotations = {"summary": item.title}
        if item.description:
            annotations["description"] = item.description
        started = parse_time(item.started_at) if item.started_at else None
        alerts.append(
            Alert(
                source="generic",
                fingerprint=f"generic:{item.dedup_key}",
                # Without started_at, the dedup key alone names the occurrence.
                starts_at=started or NO_START,
                status=item.status,
                labels=labels,
                annotations=annotations,
                links=tuple((link.text or "link", link.url) for link in item.links),
            )
        )
    return alerts


def first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "body"
    return f"{where}: {error['msg']}"[:300]
