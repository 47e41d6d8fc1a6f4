"""The paging port: what the bot asks of a paging service, whichever it is.

Contract (as the Notifier's, bot.notify): each call does one thing at the provider or raises
NotifierError (a `ProviderError`), `retryable` for what another attempt may cure (429 with
`retry_after`, 5xx, network) and not for what needs a person (a key refused, a payload
refused). Every call is keyed by the incident's ID (PagerDuty's dedup_key, Opsgenie's alias),
so a retried call changes nothing twice at the provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.models import Severity

# The runbook's severities on each provider's scale.
PAGERDUTY_SEVERITY = {
    Severity.P0: "critical",
    Severity.P1: "error",
    Severity.P2: "warning",
    Severity.P3: "info",
}
OPSGENIE_PRIORITY = {Severity.P0: "P1", Severity.P1: "P2", Severity.P2: "P3", Severity.P3: "P5"}


@dataclass(frozen=True, slots=True)
class Alert:
    """What a page tells the provider about an incident (plain facts, no Slack markup)."""

    incident_id: str
    title: str
    severity: Severity
    summary: str
    link: str
    level: int
    details: dict[str, str] = field(default_factory=dict)


class Pager(Protocol):
    provider: str

    async def trigger(self, alert: Alert) -> None:
        """Open (or, for a known key, add to) the provider's incident/alert."""
        ...

    async def acknowledge(self, incident_id: str) -> None:
        """Acknowledge the provider's incident/alert of `incident_id`."""
        ...

    async def resolve(self, incident_id: str) -> None:
        """Resolve (close) the provider's incident/alert of `incident_id`."""
        ...

    async def oncall_emails(self) -> list[str] | None:
        """E-mail addresses of whoever is on call now; None when no schedule is configured."""
        ...


class PersonDirectory(Protocol):
    """Finds the Slack user behind an e-mail address (Slack's users.lookupByEmail)."""

    async def user_by_email(self, email: str) -> str | None:
        """The Slack user ID, or None when nobody has that address; NotifierError otherwise."""
        ...


class RefusedPages(Protocol):
    """Hears that a provider refused an escalation level's page for good, paging nobody there
    (bot.escalation.unreached): told as the level's, and counted as that level unreached."""

    async def provider_refused(
        self,
        page: Mapping[str, Any],
        incident_id: str,
        provider: str,
        code: str,
        *,
        told: bool = False,
    ) -> None:
        """`page` as the level's page handed it over (ProviderPages.page); NotFound when the
        incident is gone. `told`: the channel heard this refusal already (the reopening's own
        trigger): recorded and counted, not told again."""
        ...
