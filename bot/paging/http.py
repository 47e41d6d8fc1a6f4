"""Calling a paging service over HTTP: the one place its failures become NotifierError.

Transient (`retryable`): HTTP 429 (with Retry-After as `retry_after`), any 5xx, an answer
that is not JSON (a proxy's page), connection errors and timeouts. A 4xx other than 429 is a
person's to fix (a wrong routing key, a payload the provider refuses): retrying cannot help.
Messages name the provider, the status and the provider's own explanation, never a key: the
URL's query and the headers stay out of them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

from bot import outside_json
from bot.errors import NotifierError
from bot.http_errors import UNREACHABLE, retry_of
from bot.policy.paging import PROVIDER_NAMES
from bot.redact import redact_text


class ProviderError(NotifierError):
    """A paging service refused or could not be reached; `provider` says which."""

    def __init__(self, provider: str, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.provider = provider


class Breaker:
    """Fail fast while a paging service's host does not answer.

    A call that waits out its timeout (a provider that takes connections and never answers)
    held up, at every retry, the provider's other calls and each page's on-call lookup (and,
    before they were delivered apart, every Slack message of every incident). After a call to
    a host gets no answer (or no connection), calls to that host fail at once, retryable,
    for `cooldown` seconds (doubling while it stays silent, up to `longest`); then one call
    goes through to see whether it answers again. Any answer closes it.
    """

    def __init__(
        self,
        *,
        cooldown: float = 30.0,
        longest: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cooldown = cooldown
        self.longest = longest
        self._monotonic = monotonic
        self._open_until: dict[str, float] = {}
        self._wait: dict[str, float] = {}

    def check(self, provider: str, host: str) -> None:
        """Raise a retryable ProviderError while `host` is given up on."""
        left = self._open_until.get(host, 0.0) - self._monotonic()
        if left > 0:
            name = PROVIDER_NAMES.get(provider, provider)
            raise ProviderError(
                provider,
                f"{name} unreachable: no answer from it lately, trying again in {left:.0f} s",
                error_code="unreachable",
                retryable=True,  # on the outbox's back-off: failing fast costs nothing
            )

    def silent(self, host: str) -> None:
        if self._open_until.get(host, 0.0) > self._monotonic():
            # A call that was under way beside the one that opened it (provider calls are
            # delivered side by side): the same silence, not a longer one.
            return
        wait = min(self.longest, self._wait.get(host, self.cooldown / 2) * 2)
        self._wait[host] = wait
        self._open_until[host] = self._monotonic() + wait

    def answered(self, host: str) -> None:
        self._open_until.pop(host, None)
        self._wait.pop(host, None)


def path_segment(provider: str, value: str, shape: re.Pattern[str], what: str) -> str:
    """`value` as one URL path segment: refused unless it has `shape`, then percent-quoted
    (`/`, `?`, `%` and `..` can never step out of the segment). A refusal is not retried."""
    if not shape.match(value):
        name = PROVIDER_NAMES.get(provider, provider)
        raise ProviderError(
            provider,
            f"not a well-formed {name} {what}",
            error_code="bad_identifier",
            retryable=False,
        )
    return quote(value, safe="")


def _explanation(body: Any) -> str:
    """The provider's own words about a refusal (PagerDuty `errors`, Opsgenie `message`)."""
    if not isinstance(body, dict):
        return ""
    parts: list[str] = []
    for key in ("message", "status"):
        if isinstance(body.get(key), str):
            parts.append(body[key])
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        parts.append(error["message"])
    errors = body.get("errors") or (error.get("errors") if isinstance(error, dict) else None)
    if isinstance(errors, list):
        parts += [str(item) for item in errors[:3]]
    return redact_text("; ".join(parts))[:300]


async def call(
    session: aiohttp.ClientSession,
    provider: str,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    json_body: Any = None,
    params: Any = None,
    timeout: float = 10.0,
    breaker: Breaker | None = None,
) -> Any:
    """Send one request; return the JSON answer of a 2xx, or raise ProviderError. With a
    `breaker`, a host that did not answer lately is not asked (see Breaker)."""
    name = PROVIDER_NAMES.get(provider, provider)
    host = urlsplit(url).netloc
    if breaker is not None:
        breaker.check(provider, host)
    try:
        async with session.request(
            method,
            url,
            headers=dict(headers),
            json=json_body,
            params=params,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            status = response.status
            retry_after = response.headers.get("Retry-After")
            text = await response.text()
    except UNREACHABLE as exc:
        if breaker is not None:
            breaker.silent(host)
        raise ProviderError(
            provider, f"{name} unreachable: {type(exc).__name__}", error_code="unreachable"
        ) from exc
    if breaker is not None:
        breaker.answered(host)
    try:
        body = outside_json.loads(text) if text else {}
    except ValueError:  # not JSON, or JSON no store could keep (bot.outside_json)
        body = None
    if 200 <= status < 300:
        if body is None:
            raise ProviderError(
                provider, f"{name} answered HTTP {status} with a body that is not JSON"
            )
        return body
    explanation = _explanation(body)
    message = f"{name} answered HTTP {status}" + (f": {explanation}" if explanation else "")
    retryable, wait = retry_of(status, readable=body is not None, retry_after=retry_after)
    code = "rate_limited" if status == 429 else f"http_{status}"
    raise ProviderError(provider, message, error_code=code, retryable=retryable, retry_after=wait)
