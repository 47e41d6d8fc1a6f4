"""What escalation asks of the paging services (bot.paging), without importing them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol

from bot.errors import NotifierError
from bot.incidents.changes import Change
from bot.models import Incident


class ProviderPages(Protocol):
    """Pages the paging services (PagerDuty, Opsgenie) a level names (bot.paging)."""

    async def page(
        self,
        change: Change,
        incident: Incident,
        providers: Sequence[str],
        level: int,
        *,
        acknowledged: bool = False,
        by_hand: bool = False,
        page: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue the providers' pages inside the firing transaction `change`; a page made
        `by_hand` goes out even if an acknowledgement overtakes it. `page` is the escalation
        page they belong to (its reminder, level, targets, anchor, by), handed back to
        `RefusedPages.provider_refused` when a provider refuses it for good."""
        ...


class OnCallPage(Protocol):
    """Who a page reaches on call at the paging services (bot.paging.oncall.OnCallPage)."""

    @property
    def users(self) -> tuple[str, ...]:
        """Slack user IDs, each once."""
        ...

    @property
    def unfound(self) -> tuple[tuple[str, str], ...]:
        """(provider, e-mail) of people on call with no Slack user."""
        ...

    @property
    def failed(self) -> tuple[tuple[str, str, NotifierError], ...]:
        """(provider, e-mail, Slack's error) of people Slack failed to look up."""
        ...


class OnCallSource(Protocol):
    """Who is on call now at the paging services, as Slack users (bot.paging.oncall)."""

    async def slack_users(self, providers: Sequence[str]) -> list[str]:
        """Slack user IDs on call now at `providers`; [] when none can be found. Never raises."""
        ...

    def as_answered(self, providers: Sequence[str]) -> AsyncIterator[OnCallPage]:
        """Who a page reaches on call at each of `providers` as it answers, with who Slack
        has no user for and who it failed to look up; all are asked at once, so one that
        hangs holds up nobody another has on call. Never raises."""
        ...
