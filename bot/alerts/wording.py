"""The words alerts bring with them: their names in a line, and the incident a batch of them
declares (title, severity, impact), cleaned of what a typed title may not hold."""

from __future__ import annotations

import unicodedata

from pydantic import ValidationError

from bot.alerts.routing import NO_SERVICE
from bot.alerts.storage import StoredAlert
from bot.incidents.schemas import IMPACT_MAX, TITLE_MAX, DeclareIncident
from bot.models import Severity
from bot.policy.alerts import highest


def names(alerts: list[StoredAlert], limit: int = 5) -> str:
    """`A, B and 3 more` of the distinct alert names."""
    seen: list[str] = []
    for item in alerts:
        if item.name not in seen:
            seen.append(item.name)
    shown = ", ".join(seen[:limit])
    return shown + (f" and {len(seen) - limit} more" if len(seen) > limit else "")


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def declaration(service: str, items: list[StoredAlert]) -> DeclareIncident:
    """What alerts firing for `service` declare: their headline, highest severity, impact."""
    first = items[0]
    # A summary template whose label was missing renders as blanks: the name says more.
    headline = printable(first.summary) or first.name
    if len({item.name for item in items}) > 1:
        headline += f" (+{len(items) - 1} more alerts)"
    title = headline if service == NO_SERVICE else f"{service}: {headline}"
    severity = highest([item.severity for item in items if item.severity]) or "P3"
    description = first.annotations.get("description", "")
    impact = description or f"{plural(len(items), 'alert')} firing: {names(items)}"
    # Monitors' text may hold control or bidi characters a typed title may not.
    title, impact = printable(title) or f"{service}: alerts firing", printable(impact)
    try:
        return DeclareIncident(
            severity=Severity(severity),
            title=title[:TITLE_MAX],
            impact=impact[:IMPACT_MAX],
            # A service the catalog does not name is still the incident's service.
            services=(service,) if service != NO_SERVICE else (),
        )
    except ValidationError:
        return DeclareIncident(
            severity=Severity(severity), title="Alerts firing", impact=impact[:IMPACT_MAX]
        )


def printable(text: str) -> str:
    """One line of `text` without control, format (bidi) or unassigned characters."""
    kept = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or not unicodedata.category(ch).startswith("C")
    )
    return " ".join(kept.split())
