"""Which service an alert is about and what incident severity it calls for. Pure.

Rules, in order:
1. The first route whose `match` labels all equal the alert's applies (routes are tried in
   the order written); `ignore: true` drops the alert (recorded, never declared).
2. The service is the route's `service`, else the alert's `service_label` value, lowercased;
   an alert naming none is grouped under `NO_SERVICE`.
3. The severity is the route's `severity`, else the `severity_label` value mapped through
   `severities` (a value already written P0..P3 is taken as it is); no mapping: None, and the
   alert is recorded and noted, not declared.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.alerts.models import Alert
from bot.policy.alerts import AlertsConfig

NO_SERVICE = "-"
_DIRECT = {"P0", "P1", "P2", "P3"}


@dataclass(frozen=True, slots=True)
class Routed:
    alert: Alert
    service: str
    severity: str | None
    ignored: bool = False


def route(alert: Alert, config: AlertsConfig) -> Routed:
    """Where `alert` goes under `config` (the rules above)."""
    chosen = next(
        (r for r in config.routes if all(alert.labels.get(k) == v for k, v in r.match.items())),
        None,
    )
    service = (chosen.service if chosen and chosen.service else None) or alert.labels.get(
        config.service_label, ""
    )
    service = service.strip().lower()[:80] or NO_SERVICE
    if chosen is not None and chosen.ignore:
        return Routed(alert, service, None, ignored=True)
    severity: str | None = chosen.severity if chosen is not None else None
    if severity is None:
        value = alert.labels.get(config.severity_label, "").strip()
        direct = value.upper() in _DIRECT
        severity = value.upper() if direct else config.severities.get(value.lower())
    return Routed(alert, service, severity)


def by_service(routed: list[Routed]) -> dict[str, list[Routed]]:
    """Group routed alerts by service, in a fixed order (so locks are always taken alike)."""
    groups: dict[str, list[Routed]] = {}
    for item in routed:
        groups.setdefault(item.service, []).append(item)
    return dict(sorted(groups.items()))
