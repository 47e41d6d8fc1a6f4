"""What the parsers refuse, and that parsing reads its input once (issue 7).

Control characters, bidi overrides and invisible titles are refused at the edge with a clear
message; the command text, each argument and the ETA have a maximum; `/incident update`
never mistakes its options for the message; and the update parser classifies each word once,
so its work grows with the length of the text, not with its square.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from bot.errors import UsageError
from bot.incidents import update_parsing
from bot.incidents.forms import FormErrors, parse_declare_form, parse_update_form
from bot.incidents.parsing import parse_command, parse_declare, parse_escalate, parse_note
from bot.incidents.schemas import COMMAND_TEXT_MAX
from bot.incidents.update_parsing import parse_duration, parse_update
from bot.text import excerpt, visible

ID = "INC-20261127-001"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("note a\x00b", "control character (U+0000)"),
        ("declare P1 API \x1b[31mdown", "control character (U+001B)"),
        ("declare P1 invoice \u202egnp.exe", "bidirectional override (U+202E)"),
        ("note look \u2066here\u2069", "bidirectional override (U+2066)"),
        ("note " + "x" * COMMAND_TEXT_MAX, "a command may be at most 4,000"),
    ],
)
def test_the_whole_command_is_checked_first(text: str, problem: str) -> None:
    with pytest.raises(UsageError, match=re.escape(problem)):
        parse_command(text)


def test_a_command_of_the_maximum_length_with_newlines_passes() -> None:
    text = "note " + "line\n" * ((COMMAND_TEXT_MAX - 5) // 5)
    assert len(text) <= COMMAND_TEXT_MAX
    assert parse_command(text)[0] == "note"


@pytest.mark.parametrize(
    "title",
    [
        "\u200b",  # zero-width space
        "\u200b\u200c\u200d\u2060\ufeff",  # zero-width (non-)joiners, word joiner, BOM
        "\u3164\u3164",  # Hangul fillers
        "\u2800 \u00ad",  # braille blank, soft hyphen
    ],
)
def test_an_invisible_title_is_refused(title: str) -> None:
    with pytest.raises(UsageError, match="only of invisible characters"):
        parse_declare(f"P1 {title}")
    with pytest.raises(FormErrors) as refused:
        parse_declare_form({"title": title, "severity": "P1"})
    assert "invisible" in refused.value.errors["title"]


def test_forms_refuse_what_commands_refuse_beside_the_field() -> None:
    with pytest.raises(FormErrors) as refused:
        parse_declare_form(
            {"title": "API\u202e down", "severity": "P1", "impact": "a\x00b", "services": "x"}
        )
    assert refused.value.errors == {
        "title": "The title contains a bidirectional override (U+202E).",
        "impact": "The impact contains a control character (U+0000).",
    }
    with pytest.raises(FormErrors) as refused:
        parse_update_form(ID, {"status": "monitoring", "message": "ok\x07", "eta": "30m"})
    assert refused.value.errors == {"message": "The message contains a control character (U+0007)."}


def test_a_multi_line_message_from_a_form_keeps_its_lines() -> None:
    command = parse_update_form(ID, {"status": "monitoring", "message": "one\r\ntwo\tthree"})
    assert command.message == "one\ntwo\tthree"


@pytest.mark.parametrize(
    ("parse", "text", "problem"),
    [
        (parse_note, "\u200b\u200b", "note is made only of invisible"),
        (parse_update, "monitoring \u2060", "message is made only of invisible"),
        (parse_escalate, "x" * 2001, "reason is 2001 characters"),
    ],
)
def test_each_argument_is_checked(parse: Callable[[str], Any], text: str, problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        parse(text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("99999999999999999999d", "at most 30 d"),
        ("9" * 400, "at most 30 d"),  # a float of 400 digits is infinite
        ("31d", "at most 30 d"),
        ("5w", "at most 30 d"),
    ],
)
def test_an_absurd_eta_is_refused(text: str, problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        parse_duration(text)
    with pytest.raises(UsageError, match=problem):
        parse_update(f"monitoring Fix is out eta {text}")


def test_thirty_days_is_the_longest_eta() -> None:
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_update("monitoring Slow rebuild eta 720h").eta == timedelta(days=30)


@pytest.mark.parametrize(
    "text",
    [
        "monitoring eta 30m",
        "monitoring eta 30m impact EU only",
        "monitoring eta soon",
        "MONITORING eta: 2h",
    ],
)
def test_an_update_whose_options_leave_no_message_is_refused(text: str) -> None:
    with pytest.raises(UsageError, match="Say what is happening after the status, before"):
        parse_update(text)


def test_options_are_never_the_message() -> None:
    command = parse_update("monitoring Error rate normal eta 30m impact none left")
    assert (command.message, command.eta, command.impact) == (
        "Error rate normal",
        timedelta(minutes=30),
        "none left",
    )


def test_refused_words_are_quoted_short() -> None:
    with pytest.raises(UsageError) as refused:
        parse_update("x" * 3000 + " message")
    assert len(str(refused.value)) < 200


def test_what_is_recorded_of_refused_text() -> None:
    assert visible("a\x00b\u202ec\nd") == "a\\x00b\\u202ec\nd"
    assert excerpt("x" * 10, 4) == "xxxx… (10 characters)"


# -- linear work: the update parser reads every word once -----------------------------


VOCABULARY = ["eta", "ETA:", "impact", "impact:", "30m", "2h", "0", "1bd", "soon", "x", "the"]


def _count_looks(monkeypatch: pytest.MonkeyPatch) -> tuple[Counter[str], Counter[str]]:
    """Count how often each word is classified as a keyword and parsed as a duration."""
    keyword_looks: Counter[str] = Counter()
    duration_looks: Counter[str] = Counter()
    keyword, duration = update_parsing._keyword, update_parsing.parse_duration

    def counted_keyword(token: str) -> str | None:
        keyword_looks[token] += 1
        return keyword(token)

    def counted_duration(token: str) -> timedelta:
        duration_looks[token] += 1
        return duration(token)

    monkeypatch.setattr(update_parsing, "_keyword", counted_keyword)
    monkeypatch.setattr(update_parsing, "parse_duration", counted_duration)
    return keyword_looks, duration_looks


def test_the_update_parser_classifies_each_word_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A property over random word salads of keywords, durations and words: no word is
    looked at more often than it occurs, whatever the text, so parsing never rescans."""
    keyword_looks, duration_looks = _count_looks(monkeypatch)
    rng = random.Random(2026)
    for _ in range(3000):
        words = [rng.choice(VOCABULARY) for _ in range(rng.randint(1, 14))]
        occurs = Counter(words)
        keyword_looks.clear()
        duration_looks.clear()
        try:
            parse_update("monitoring " + " ".join(words))
        except UsageError:
            pass  # refused or not, the reading is what is measured
        assert all(keyword_looks[w] <= occurs[w] for w in keyword_looks), words
        assert all(duration_looks[w] <= occurs[w] for w in duration_looks), words


def test_many_keywords_are_read_in_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worst case of the old parser (it tried every `eta` as the start of the options,
    rescanning the rest each time): 91 `eta`s in a message of 1,800 characters, each read
    once."""
    keyword_looks, duration_looks = _count_looks(monkeypatch)
    text = "It is slow: " + "the eta is unclear, " * 90 + "eta 30m impact users"
    command = parse_update("monitoring " + text)
    assert command.eta == timedelta(minutes=30) and command.impact == "users"
    assert sum(keyword_looks.values()) == len(text.split())
    assert sum(duration_looks.values()) == 91
