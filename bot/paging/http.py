"""Calling a paging service over HTTP: the one place its failures become NotifierError.

Transient (`retryable`): HTTP 429 (with Retry-After as `retry_after`), any 5xx, an answer
that is not JSON (a proxy's page), connection errors and timeouts. A 4xx other than 429 is a
person's to fix (a wrong routing key, a payload the provider refuses): retrying cannot help.
Messages name the provider, the status and the provider's own explanation, never a key: the
URL's query and the headers stay out of them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp

from bot.errors import NotifierError
from bot.http_errors import UNREACHABLE, retry_of
from bot.policy.paging import PROVIDER_NAMES
from bot.redact import redact_text


class ProviderError(NotifierError):
    """A paging service refused or could not be reached; `provider` says which."""

    def __init__(self, provider: str, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.provider = provider


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
) -> Any:
    """Send one request; return the JSON answer of a 2xx, or raise ProviderError."""
    name = PROVIDER_NAMES.get(provider, provider)
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
        raise ProviderError(
            provider, f"{name} unreachable: {type(exc).__name__}", error_code="unreachable"
        ) from exc
    try:
        body = json.loads(text) if text else {}
    except ValueError:
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
