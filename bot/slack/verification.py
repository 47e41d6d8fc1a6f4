"""Slack's request signature, checked on the raw bytes before anything parses them.

Slack signs `v0:{timestamp}:{body}` with the app's signing secret (HMAC-SHA256) and sends the
timestamp and the signature as headers. A request whose timestamp is more than five minutes
from now, in the past or in the future, is refused as stale (a replay, or a clock far off).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

MAX_CLOCK_SKEW = 5 * 60  # seconds, either way
_TIMESTAMP_DIGITS = 12  # room for the year 33658; a longer "timestamp" is not one


def signature_problem(
    body: bytes, headers: Mapping[str, str], signing_secret: str, now: float
) -> str | None:
    """Why `body` with `headers` is not a request from Slack, or None when it is."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not timestamp or not signature:
        return "unsigned"
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > _TIMESTAMP_DIGITS:
        return "a timestamp that is not a number"
    if abs(now - int(timestamp)) > MAX_CLOCK_SKEW:
        return "a stale timestamp"
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        return "a bad signature"
    return None
