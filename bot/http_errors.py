"""What an HTTP failure means for another attempt: shared by every client that translates
its errors into NotifierError (Slack's Web API, the paging services).

Transient: HTTP 429 (after Retry-After, else a second), any 5xx and an answer that is not
JSON (a proxy's page), both after Retry-After when one is given; connection errors and
timeouts (`UNREACHABLE`). Any other 4xx is a person's to fix: retrying cannot help.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp

# What aiohttp raises when the other side could not be reached or did not answer in time.
UNREACHABLE = (aiohttp.ClientError, TimeoutError, OSError)

# A 429 without Retry-After still waits this long before the next attempt.
DEFAULT_RATE_LIMIT_WAIT = 1.0


def retry_after_seconds(header: str | None) -> float | None:
    """Seconds from a Retry-After header: a number, or an HTTP date; None when absent."""
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def retry_of(status: int, *, readable: bool, retry_after: str | None) -> tuple[bool, float | None]:
    """(retryable, retry_after in seconds) for an answer of HTTP `status`; `readable` says
    whether its body was the JSON the API speaks, `retry_after` is its Retry-After header."""
    wait = retry_after_seconds(retry_after)
    if status == 429:
        return True, wait if wait is not None else DEFAULT_RATE_LIMIT_WAIT
    retryable = status >= 500 or not readable
    return retryable, wait if retryable else None
