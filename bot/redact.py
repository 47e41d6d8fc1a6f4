"""Secrets never reach Slack or the audit log."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_SECRET_KEYS = re.compile(
    r"(password|passwd|secret|token|dsn|api[_-]?key|routing[_-]?key|credential)", re.I
)
_PATTERNS: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    # user:password@ in any URL (postgresql://, redis://, https://...). Anchored on `://`,
    # not on the scheme before it: a scheme pattern is retried from every letter of a long
    # word, and 40,000 letters took seconds (quadratic).
    (re.compile(r"://(?P<user>[^:/@\s]*):[^@/\s]+@"), r"://\g<user>:***@"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]+"), "xox?-***"),
    (re.compile(r"\bxapp-[A-Za-z0-9-]+"), "xapp-***"),
    (re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"), "AKIA***"),
    # password=... in a DSN or a config line, a quoted value whole (spaces and all).
    (re.compile(r"(?i)\b(password|pwd)\s*=\s*(?:'[^']*'?|\"[^\"]*\"?|[^\s;]+)"), r"\1=***"),
    # A setting whose name ends in a secret's word, as apps print their configuration to a
    # log or an error: DB_PASSWORD=..., api_key: ..., "client_secret": "...",
    # AWS_SECRET_ACCESS_KEY=... Starts only where a name starts, so a long word is read once.
    (
        re.compile(
            r"(?i)(?:^|(?<=[^\w.-]))(?P<key>[\w.-]*?(?:password|passwd|pwd|secret|token|api[_-]?key"
            r"|access[_-]?key|secret[_-]?key|private[_-]?key|credentials?))"
            r"(?P<sep>[\"']?\s*[=:]\s*)(?:'[^']*'?|\"[^\"]*\"?|[^\s;,&'\"]+)"
        ),
        r"\g<key>\g<sep>***",
    ),
    # SQL's `[ENCRYPTED] PASSWORD '...'` (CREATE/ALTER ROLE): every string form, and one cut
    # short by the end of the text (pg_stat_activity truncates long statements).
    (
        re.compile(
            r"(?i)\b(PASSWORD)\s+(?:[EU]&?)?'(?:[^'\\]|''|\\.)*(?:'|$)"
            r"|\b(PASSWORD)\s+\$(\w*)\$[\s\S]*?(?:\$\3\$|$)"
        ),
        lambda m: f"{m.group(1) or m.group(2)} '***'",
    ),
    # HTTP bearer tokens (an Authorization header copied into a query, a log, an error).
    (re.compile(r"(?i)\b(Bearer)\s+[A-Za-z0-9._~+/-]+=*"), r"\1 ***"),
    # Paging services' authorization headers (PagerDuty REST, Opsgenie).
    (re.compile(r"(?i)\bToken token=[^\s,;\"']+"), "Token token=***"),
    (re.compile(r"(?i)\bGenieKey\s+[^\s,;\"']+"), "GenieKey ***"),
]
# Secret values read from the environment (routing keys, API keys, webhook secrets), each
# masked whatever its length. One of `_WHOLE_FROM` characters or more is masked wherever it
# appears, whatever surrounds it; a shorter one wherever it stands on its own (not inside a
# longer word or number, which it would otherwise cut up: "abc" in "abcdef" is no secret).
# Shorter ones used to be left out, and were printed whole.
_KNOWN_SECRETS: list[str] = []  # the longest first: a secret that holds another is masked whole
_SHORT_SECRETS: dict[str, re.Pattern[str]] = {}
_WHOLE_FROM = 8

REDACTED = "***"


def register_secret(value: str) -> None:
    """Mask `value` (a secret read from the environment) in everything redacted from now on,
    whatever its length (blank: nothing to mask)."""
    if not value.strip():
        return
    if len(value) >= _WHOLE_FROM:
        if value not in _KNOWN_SECRETS:
            _KNOWN_SECRETS.append(value)
            _KNOWN_SECRETS.sort(key=len, reverse=True)
    elif value not in _SHORT_SECRETS:
        _SHORT_SECRETS[value] = re.compile(
            r"(?:^|(?<=[^A-Za-z0-9]))" + re.escape(value) + r"(?![A-Za-z0-9])"
        )


def redact_text(text: str) -> str:
    """Mask connection-string passwords, SQL `PASSWORD '...'` literals, bearer tokens, Slack
    tokens, AWS keys, paging services' keys and every registered secret in free text."""
    for secret in _KNOWN_SECRETS:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for secret, standing_alone in _SHORT_SECRETS.items():
        if secret in text:
            text = standing_alone.sub(REDACTED, text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact(value: Any) -> Any:
    """Redact a JSON-like value: secret-looking keys are masked whole, strings scrubbed."""
    if isinstance(value, dict):
        return {
            key: REDACTED if _SECRET_KEYS.search(str(key)) and val else redact(val)
            for key, val in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value
