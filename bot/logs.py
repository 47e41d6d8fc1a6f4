"""Logging: JSON lines for machines (LOG_FORMAT=json), text for a person at a console.

Every record carries the request, incident and user it was written for, from context
variables set where the work starts (the Slack middleware, the outbox, a reminder), so a
line deep in a service needs no extra arguments. Every record, message and traceback,
passes through `bot.redact.redact_text`: the same rule that keeps secrets out of Slack and
the audit log keeps them out of the log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TextIO

from bot.redact import redact_text

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
incident_id: ContextVar[str | None] = ContextVar("incident_id", default=None)
user_id: ContextVar[str | None] = ContextVar("user_id", default=None)

_FIELDS = {"request_id": request_id, "incident_id": incident_id, "user": user_id}

# What would break a log line or the terminal reading it: C0 and C1 controls, DEL, line and
# paragraph separators, bidirectional embeddings, overrides and isolates.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
OUTSIDE_CHARS = 200


def outside(value: object, limit: int = OUTSIDE_CHARS) -> str:
    """A value from outside (a webhook's key, a provider's answer) fit for one log line:
    control characters escaped (`\\x00`, `\\u202e`), at most `limit` characters of it,
    and its length when it was longer."""
    text = str(value)
    shown = _UNPRINTABLE.sub(_escaped, text[:limit])
    if len(text) <= limit and len(shown) <= limit:
        return shown
    return f"{shown[:limit]}… ({len(text)} characters)"


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


@contextmanager
def bound(
    *, request: str | None = None, incident: str | None = None, user: str | None = None
) -> Iterator[None]:
    """Tag the log records written inside the block (only the values given are changed)."""
    tokens = [
        (var, var.set(value))
        for var, value in ((request_id, request), (incident_id, incident), (user_id, user))
        if value is not None
    ]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class ContextFilter(logging.Filter):
    """Adds the context's ids to every record and redacts its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _FIELDS.items():
            setattr(record, name, var.get())
        record.msg = redact_text(record.getMessage())
        record.args = None
        return True


class RepeatFilter(logging.Filter):
    """Collapses a warning or error repeated many times a second: the first `burst` records
    of a kind (logger, level, message template, exception type) each `window` seconds pass,
    the rest are counted. The count is told on the next record of that kind let through, or,
    if none comes, in a line of its own once the window is over and anything is logged.

    A flood (a traceback for every connection refused) is then a few lines a second however
    fast it comes, and still says how big it was."""

    MAX_KINDS = 1000  # forget quiet kinds beyond this many

    def __init__(
        self, *, burst: int = 3, window: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._burst = burst
        self._window = window
        self._clock = clock
        # kind -> [window start, records passed in it, records left out since the last one]
        self._kinds: dict[tuple[object, ...], list[float]] = {}
        self._next_sweep = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        now = self._clock()
        if now >= self._next_sweep:
            self._next_sweep = now + self._window
            self._sweep(now)
        if record.levelno < logging.WARNING:
            return True
        exc_type = record.exc_info[0] if record.exc_info else None
        kind = (record.name, record.levelno, str(record.msg), exc_type)
        state = self._kinds.get(kind)
        if state is None or now - state[0] >= self._window:
            left_out = int(state[2]) if state is not None else 0
            if state is None and len(self._kinds) >= self.MAX_KINDS:
                self._sweep(now)
            self._kinds[kind] = [now, 1, 0]
            if left_out:
                # No `%` in the note: the message is formatted with its arguments later.
                record.msg = f"{record.msg} [{left_out} more like this left out]"
            return True
        if state[1] < self._burst:
            state[1] += 1
            return True
        state[2] += 1
        return False

    def _sweep(self, now: float) -> None:
        """Forget kinds whose window is over, telling the count of any left out."""
        for kind, state in list(self._kinds.items()):
            if now - state[0] < self._window:
                continue
            del self._kinds[kind]
            if state[2]:
                name, level, template, _ = kind
                logging.getLogger(str(name)).log(
                    int(str(level)), "%d more like this left out: %s", int(state[2]), template
                )


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, ids, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _FIELDS:
            value = getattr(record, name, None)
            if value:
                line[name] = value
        if record.exc_info:
            line["exception"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The console's format, with the ids that are set, and tracebacks redacted."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        ids = " ".join(
            f"{name}={value}" for name in _FIELDS if (value := getattr(record, name, None))
        )
        text = super().format(record)
        return redact_text(f"{text} [{ids}]" if ids else text)


def setup_logging(fmt: str = "text", *, stream: TextIO | None = None) -> logging.Handler:
    """Send every record to `stream` (stderr) as `fmt` ("json" or "text")."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RepeatFilter())  # first: it tells kinds apart by message template
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.set_name("chatops")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "chatops"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return handler
