"""What one silence from Slack covers: per alert name and service, the labels its alerts
share, as Alertmanager's equality (or prefix) matchers. Pure: no store, no HTTP."""

from __future__ import annotations

from typing import Any

from bot.alerts.models import MAX_VALUE
from bot.alerts.storage import StoredAlert
from bot.text import REPLACED

MAX_SILENCES = 20


def silence_key(alert: StoredAlert) -> tuple[str, str]:
    """What one silence covers: an alert name of one service. Per name alone, a storm
    incident's batch (one name, many services) shares no service label, and its silence
    held that name for every service, those with incidents of their own included."""
    return alert.name, alert.service


def matcher_sets(alerts: list[StoredAlert], service_label: str = "") -> list[dict[str, str]]:
    """Per alert name and service, the labels all its alerts share (at most 20 sets). When
    none of them has `service_label`, it is matched as absent (an empty value, to
    Alertmanager): alerts naming no service are silenced, not that name of every service."""
    by_name: dict[tuple[str, str], list[dict[str, str]]] = {}
    for alert in alerts:
        by_name.setdefault(silence_key(alert), []).append(alert.labels)
    sets = []
    for labels in by_name.values():
        common = dict(labels[0])
        for other in labels[1:]:
            common = {k: v for k, v in common.items() if other.get(k) == v}
        if common and service_label and not any(one.get(service_label) for one in labels):
            common[service_label] = ""
        if common:
            sets.append(common)
    return sets[:MAX_SILENCES]


def outside(
    alerts: list[StoredAlert],
    common: list[dict[str, str]],
    sets: list[list[dict[str, Any]]],
    running: list[list[dict[str, Any]]],
    created: list[tuple[str, list[dict[str, Any]]]],
) -> list[StoredAlert]:
    """The alerts no silence running or just made covers (`common[i]` gave `sets[i]`)."""
    made = running + [matchers for _, matchers in created]
    covering = [labels for labels, matchers in zip(common, sets, strict=True) if matchers in made]
    return [
        alert
        for alert in alerts
        if not any(all(alert.labels.get(k, "") == v for k, v in c.items()) for c in covering)
    ]


def silenceable(alerts: list[StoredAlert]) -> tuple[list[StoredAlert], int]:
    """The alerts of a batch a click can silence: Alertmanager's, of its first MAX_SILENCES
    names and services (in the batch's order); and how many of Alertmanager's that leaves
    out (those of the names and services after them)."""
    from_alertmanager = [a for a in alerts if a.source == "alertmanager"]
    keys = list(dict.fromkeys(silence_key(a) for a in from_alertmanager))[:MAX_SILENCES]
    taken = [a for a in from_alertmanager if silence_key(a) in keys]
    return taken, len(from_alertmanager) - len(taken)


def unsilenced_of(
    alerts: list[StoredAlert], service_label: str, running: list[list[dict[str, Any]]]
) -> list[StoredAlert]:
    """The alerts of a batch a click would silence (`silenceable`) that none of the
    silences `running` (their matchers) covers: while any is left, the message keeps its
    Silence button."""
    taken, _ = silenceable(alerts)
    common = matcher_sets(taken, service_label)
    sets = [matchers_of(labels) for labels in common]
    return outside(taken, common, sets, running, [])


def matchers_of(labels: dict[str, str]) -> list[dict[str, Any]]:
    """Alertmanager's matchers for one set of labels, in a stable order.

    A value as long as the cut (bot.alerts.models.MAX_VALUE) may be the start of a longer
    one: an equality matcher would miss the real alert, and leaving the label out would
    silence its neighbours that differ only there. It matches as a prefix instead (a regex,
    which Alertmanager anchors): the value as recorded followed by anything. A control
    character read as U+FFFD (bot.alerts.models) matches any one character there."""
    return [
        {"name": name, "value": _pattern(value), "isRegex": True, "isEqual": True}
        if len(value) >= MAX_VALUE or REPLACED in value
        else {"name": name, "value": value, "isRegex": False, "isEqual": True}
        for name, value in sorted(labels.items())
    ]


def _pattern(value: str) -> str:
    # Go's RE2 takes every escaped ASCII punctuation (and space) as itself.
    escaped = "".join(
        "." if c == REPLACED else f"\\{c}" if c.isascii() and not c.isalnum() else c for c in value
    )
    return escaped + (".*" if len(value) >= MAX_VALUE else "")
