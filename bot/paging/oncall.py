"""Who is on call now, read from the paging services' schedules, as Slack users.

The provider gives e-mail addresses; Slack's users.lookupByEmail turns them into users. The
answer is cached for a short while (a page at 3 a.m. must not wait on two round trips per
DM), and when the provider cannot be reached the last answer is served while it lasts, or
none: the level's Slack targets are the fallback. A refusal for good (a revoked key, a
deleted schedule) is no outage: nothing earlier is served then. Never raises.

Several providers are asked at once, each within its own timeout: asked in turn, two that
hang (10 s each) took the page's whole fan-out time (20 s), and one that hung held up the
people the next one has on call. A page takes each provider's answer as it comes
(`as_answered`); `/oncall` reads them all, in the order given, each once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
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
    # Slack's failure for each of those addresses, for a page to retry or tell (as_answered).
    lookup_failures: Mapping[str, NotifierError] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def reachable(self) -> bool:
        return not self.error


@dataclass(frozen=True, slots=True)
class OnCallPage:
    """Who a page reaches on call at a paging service (OnCallResolver.as_answered)."""

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

    async def _ask(self, providers: Sequence[str]) -> list[OnCallNow]:
        """Each provider's answer (those with a schedule), asked at once, in the order given;
        a provider named twice is asked once."""
        asked = list(dict.fromkeys(providers))
        answers = await asyncio.gather(*(self.now(provider) for provider in asked))
        return [answer for answer in answers if answer is not None]

    async def slack_users(self, providers: Sequence[str]) -> list[str]:
        """Slack users on call now at `providers`, in order, without repeats; [] on failure."""
        users: list[str] = []
        for answer in await self._ask(providers):
            users.extend(user for user in answer.users if user not in users)
        return users

    async def as_answered(self, providers: Sequence[str]) -> AsyncIterator[OnCallPage]:
        """Who a page reaches on call at each of `providers`, as each answers, all asked at
        once (each within its own timeout): one that hangs holds up nobody another has on
        call. Each gives the Slack users, the addresses Slack has no user for, and Slack's
        failure to look some up (to be tried again: a rate limit or an outage of Slack must
        not drop someone's page DM). A provider that cannot be asked reaches nobody here
        (the level's Slack targets are the fallback); one with no schedule gives nothing."""
        asked = [asyncio.ensure_future(self.now(p)) for p in dict.fromkeys(providers)]
        try:
            for answered in asyncio.as_completed(asked):
                answer = await answered
                if answer is not None:
                    yield _page_of([answer])
        finally:
            for task in asked:  # the page's fan-out ended early (it failed): ask no more
                task.cancel()

    async def everyone(self, among: Collection[str] | None = None) -> list[OnCallNow]:
        """Each configured provider's answer (those with a schedule; only those `among`,
        when given), for `/oncall`."""
        return await self._ask([p for p in self.pagers if among is None or p in among])


def _page_of(answers: Iterable[OnCallNow]) -> OnCallPage:
    users: list[str] = []
    unfound: list[tuple[str, str]] = []
    failures: list[tuple[str, str, NotifierError]] = []
    for answer in answers:
        users.extend(user for user in answer.users if user not in users)
        for email in answer.unmatched:
            failure = answer.lookup_failures.get(email)
            if failure is None:
                unfound.append((answer.provider, email))
            else:
                failures.append((answer.provider, email, failure))
    return OnCallPage(tuple(users), tuple(unfound), tuple(failures))
