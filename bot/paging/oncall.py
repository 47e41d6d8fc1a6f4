"""Who is on call now, read from the paging services' schedules, as Slack users.

The provider gives e-mail addresses; Slack's users.lookupByEmail turns them into users. The
answer is cached for a short while (a page at 3 a.m. must not wait on two round trips per
DM), and when the provider cannot be reached the last answer is served while it lasts, or
none: the level's Slack targets are the fallback. A refusal for good (a revoked key, a
deleted schedule) is no outage: nothing earlier is served then. Never raises.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from bot.errors import NotifierError
from bot.logs import outside
from bot.paging.ports import Pager, PersonDirectory

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OnCallNow:
    """Whoever a provider says is on call now."""

    provider: str
    users: tuple[str, ...] = ()  # Slack user IDs
    unmatched: tuple[str, ...] = ()  # e-mail addresses with no Slack user
    error: str = ""  # why the provider could not be asked ("" when it answered)
    stale: bool = False  # an earlier answer, served because the provider failed
    refused: bool = False  # it answered, refusing for good (a revoked key, a deleted schedule)
    lookup_error: str = ""  # Slack failed to say who has some of the addresses (in unmatched)
    # Slack's failure for each of those addresses, for a page to retry or tell (for_page).
    lookup_failures: Mapping[str, NotifierError] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def reachable(self) -> bool:
        return not self.error


@dataclass(frozen=True, slots=True)
class OnCallPage:
    """Who a page reaches on call at the paging services (OnCallResolver.for_page)."""

    users: tuple[str, ...] = ()  # Slack user IDs
    unfound: tuple[tuple[str, str], ...] = ()  # (provider, e-mail) with no Slack user
    # (provider, e-mail, Slack's error) Slack failed to look up: retryable, or the bot's own
    failed: tuple[tuple[str, str, NotifierError], ...] = ()


@dataclass
class _Cached:
    expires: float
    answer: OnCallNow
    emails: dict[str, str | None] = field(default_factory=dict)


class OnCallResolver:
    """Resolves providers' on-call people to Slack users, cached for `ttl` seconds."""

    def __init__(
        self,
        pagers: Mapping[str, Pager],
        people: PersonDirectory | None,
        *,
        ttl: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pagers = pagers
        self.people = people
        self.ttl = ttl
        self._monotonic = monotonic
        self._cache: dict[str, _Cached] = {}

    async def now(self, provider: str) -> OnCallNow | None:
        """Who is on call at `provider`; None when it has no schedule configured."""
        pager = self.pagers.get(provider)
        if pager is None:
            return None
        cached = self._cache.get(provider)
        if cached is not None and cached.expires > self._monotonic():
            return cached.answer
        try:
            emails = await pager.oncall_emails()
        except NotifierError as exc:
            log.warning("on call at %s: %s", provider, outside(exc))
            if not exc.retryable:
                # Not an outage: the schedule is gone or the key revoked. Whoever it named
                # last week is no longer on call, and would be woken for every page.
                self._cache.pop(provider, None)
                return OnCallNow(provider, error=str(exc), refused=True)
            if cached is not None:
                return OnCallNow(
                    provider, cached.answer.users, cached.answer.unmatched, str(exc), stale=True
                )
            return OnCallNow(provider, error=str(exc))
        if emails is None:
            return None
        users: list[str] = []
        unmatched: list[str] = []
        lookup_error = ""
        failures: dict[str, NotifierError] = {}
        for email in emails:
            try:
                user = await self._user(email)
            except NotifierError as exc:
                # Slack's failure (a missing users:read.email scope, a rate limit), not the
                # provider's: it was told as the provider refusing, its answer dropped.
                log.warning(
                    "on call at %s: looking up a person in Slack: %s", provider, outside(exc)
                )
                lookup_error = str(exc)
                failures[email] = exc
                user = None
            if user is None:
                unmatched.append(email)
            elif user not in users:
                users.append(user)
        answer = OnCallNow(
            provider,
            tuple(users),
            tuple(unmatched),
            lookup_error=lookup_error,
            lookup_failures=failures,
        )
        if not lookup_error:  # an incomplete answer is asked again next time
            self._cache[provider] = _Cached(self._monotonic() + self.ttl, answer)
        return answer

    async def _user(self, email: str) -> str | None:
        if self.people is None:
            return None
        return await self.people.user_by_email(email)

    async def slack_users(self, providers: Sequence[str]) -> list[str]:
        """Slack users on call now at `providers`, in order, without repeats; [] on failure."""
        users: list[str] = []
        for provider in providers:
            answer = await self.now(provider)
            if answer is not None:
                users.extend(user for user in answer.users if user not in users)
        return users

    async def for_page(self, providers: Sequence[str]) -> OnCallPage:
        """Who a page reaches on call at `providers`: the Slack users, the addresses Slack
        has no user for, and Slack's failure to look some up (to be tried again: a rate
        limit or an outage of Slack must not drop someone's page DM). A provider that cannot
        be asked reaches nobody here: the level's Slack targets are the fallback."""
        users: list[str] = []
        unfound: list[tuple[str, str]] = []
        failures: list[tuple[str, str, NotifierError]] = []
        for provider in providers:
            answer = await self.now(provider)
            if answer is None:
                continue
            users.extend(user for user in answer.users if user not in users)
            for email in answer.unmatched:
                failure = answer.lookup_failures.get(email)
                if failure is None:
                    unfound.append((provider, email))
                else:
                    failures.append((provider, email, failure))
        return OnCallPage(tuple(users), tuple(unfound), tuple(failures))

    async def everyone(self, among: Collection[str] | None = None) -> list[OnCallNow]:
        """Each configured provider's answer (those with a schedule; only those `among`,
        when given), for `/oncall`."""
        asked = [p for p in self.pagers if among is None or p in among]
        found = [await self.now(provider) for provider in asked]
        return [answer for answer in found if answer is not None]
