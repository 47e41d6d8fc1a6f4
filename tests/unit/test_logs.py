"""Log lines: JSON with the ids of the work they belong to, secrets masked everywhere."""

from __future__ import annotations

import io
import json
import logging

from bot import logs


def _capture(fmt: str) -> tuple[io.StringIO, logging.Handler]:
    stream = io.StringIO()
    return stream, logs.setup_logging(fmt, stream=stream)


def test_json_lines_carry_request_incident_and_user() -> None:
    stream, handler = _capture("json")
    try:
        with logs.bound(request="event:Ev1", user="U0ALICE"), logs.bound(incident="INC-1"):
            logging.getLogger("bot.test").warning("posted %s", "the card")
        logging.getLogger("bot.test").info("outside")
    finally:
        logging.getLogger().removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "posted the card" and first["level"] == "WARNING"
    assert (first["request_id"], first["incident_id"], first["user"]) == (
        "event:Ev1",
        "INC-1",
        "U0ALICE",
    )
    assert "request_id" not in second and "incident_id" not in second


def test_secrets_are_masked_in_messages_and_tracebacks_in_both_formats() -> None:
    for fmt in ("json", "text"):
        stream, handler = _capture(fmt)
        try:
            try:
                raise RuntimeError("connect to postgresql://bot:hunter2@db/prod failed")
            except RuntimeError:
                logging.getLogger("bot.test").exception("token xoxb-123-456-abc refused")
        finally:
            logging.getLogger().removeHandler(handler)
        out = stream.getvalue()
        assert "hunter2" not in out and "xoxb-123" not in out, out
        assert "RuntimeError" in out and "postgresql://bot:***@db/prod" in out


def test_a_value_from_outside_is_one_short_printable_line() -> None:
    assert logs.outside("INC-20261127-001") == "INC-20261127-001"
    assert logs.outside("a\x00b\nc\u202ed\x85") == "a\\x00b\\x0ac\\u202ed\\x85"
    long = logs.outside("K" * 100_112)
    assert long == "K" * 200 + "… (100112 characters)"
    # Escaping cannot make it longer than its limit either.
    escaped = logs.outside("\x00" * 150)
    assert escaped == "\\x00" * 50 + "… (150 characters)"
    assert logs.outside(None) == "None"


def test_a_nul_from_outside_keeps_the_text_log_text() -> None:
    stream, handler = _capture("text")
    try:
        logging.getLogger("bot.test").info("webhook for %s", logs.outside("INC\x00\nforged line"))
    finally:
        logging.getLogger().removeHandler(handler)
    [line] = stream.getvalue().splitlines()
    assert "\x00" not in line and line.endswith("webhook for INC\\x00\\x0aforged line")
