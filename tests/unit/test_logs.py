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


def test_an_error_repeated_many_times_a_second_is_logged_a_few_times_with_a_count() -> None:
    now = [100.0]
    stream = io.StringIO()
    handler = logs.setup_logging("text", stream=stream)
    handler.filters[0] = logs.RepeatFilter(burst=3, window=1.0, clock=lambda: now[0])
    log = logging.getLogger("asyncio")
    try:
        for fd in range(10_000):
            try:
                raise OSError(24, "Too many open files")
            except OSError:
                log.exception("socket.accept() out of system resource: fd=%d", fd)
        logging.getLogger("bot.test").warning("another kind")  # passes: not the same kind
        log.info("socket.accept() out of system resource: fd=%d", 0)  # info is never held
        now[0] += 1.5
        try:
            raise OSError(24, "Too many open files")
        except OSError:
            log.exception("socket.accept() out of system resource: fd=%d", 10_000)
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [line for line in stream.getvalue().splitlines() if " asyncio: " in line]
    assert len(lines) == 6, lines  # three, the info line, the count, the next one
    assert lines[-2].endswith(
        "ERROR asyncio: 9997 more like this left out: socket.accept() out of system resource: fd=%d"
    ), lines[-2]
    assert lines[-1].endswith("fd=10000"), lines[-1]
    assert stream.getvalue().count("Traceback") == 4
    assert "another kind" in stream.getvalue()


def test_the_count_of_a_flood_that_stops_is_told_once_its_window_is_over() -> None:
    now = [100.0]
    stream = io.StringIO()
    handler = logs.setup_logging("text", stream=stream)
    handler.filters[0] = logs.RepeatFilter(burst=3, window=1.0, clock=lambda: now[0])
    try:
        for _ in range(50):
            logging.getLogger("bot.serving").warning("shed the oldest %s", "connection")
        now[0] += 1.5
        logging.getLogger("bot.runtime").info("stopping: signal received")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 5, lines  # three, the count, the next line
    assert "WARNING bot.serving: 47 more like this left out: shed the oldest %s" in lines[3]
    assert lines[4].endswith("stopping: signal received")


def test_a_record_of_a_kind_whose_window_ran_out_carries_the_count() -> None:
    now = [100.0]
    stream = io.StringIO()
    handler = logs.setup_logging("text", stream=stream)
    handler.filters[0] = logs.RepeatFilter(burst=1, window=1.0, clock=lambda: now[0])
    log = logging.getLogger("bot.serving")
    try:
        log.info("a sweep at 100.0")
        now[0] = 100.5
        for _ in range(4):
            log.warning("closed a request to %s", "/slack/events")
        now[0] = 101.2  # a sweep: the kind's window (from 100.5) is not over yet
        log.info("another line")
        now[0] = 101.6
        log.warning("closed a request to %s", "/slack/events")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [line for line in stream.getvalue().splitlines() if "closed a request" in line]
    assert len(lines) == 2, lines
    assert lines[1].endswith("closed a request to /slack/events [3 more like this left out]")
