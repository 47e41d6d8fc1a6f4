"""What user text may hold, checked at every input edge; and how to show text that broke it.

Refused: control characters (a NUL byte cannot even be stored in PostgreSQL; the rest corrupt
terminals and logs) except tab and newline where a text may span lines, and the bidirectional
embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) that make text read
differently from what it holds. A required text made only of invisible characters (spaces,
zero-width and other format characters, blank-looking letters) is refused too: a title
nobody can see is no title. Everything here is one linear pass over the text.
"""

from __future__ import annotations

import re
import unicodedata

# C0 controls but tab and newline, DEL, C1 controls, bidi embeddings/overrides/isolates.
_FORBIDDEN_MULTILINE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_FORBIDDEN_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Letters and symbols that draw nothing: Hangul fillers, the braille blank, the combining
# grapheme joiner, variation selectors.
_BLANK_GLYPHS = frozenset(
    "\u115f\u1160\u3164\uffa0\u2800\u034f" + "".join(map(chr, range(0xFE00, 0xFE10)))
)
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
_NEWLINES = re.compile(r"\r\n?")


def normalize_newlines(text: str) -> str:
    """`\\r\\n` and a lone `\\r` as `\\n`: one way to end a line."""
    return _NEWLINES.sub("\n", text)


def forbidden_character(text: str, *, multiline: bool = False) -> str | None:
    """The first character `text` may not hold, described for a person; None when clean."""
    pattern = _FORBIDDEN_MULTILINE if multiline else _FORBIDDEN_ONE_LINE
    match = pattern.search(text)
    if match is None:
        return None
    char = match.group()
    kind = "a bidirectional override" if char in _BIDI_CONTROLS else "a control character"
    return f"{kind} ({codepoint(char)})"


def is_invisible(text: str) -> bool:
    """True when no character of `text` draws anything (the empty text included)."""
    return all(_invisible(char) for char in text)


def _invisible(char: str) -> bool:
    return (
        char.isspace()
        or char in _BLANK_GLYPHS
        or unicodedata.category(char) in _INVISIBLE_CATEGORIES
        or 0xE0100 <= ord(char) <= 0xE01EF  # variation selectors supplement
    )


def decimal(text: str, *, digits: int = 18) -> int | None:
    """`text` as a number when it is ASCII digits only, at most `digits` of them (one fits a
    database's BIGINT); None otherwise. `str.isdigit` also passes '²' and '١', which `int`
    refuses or reads, and digits past what the store can hold."""
    if not (0 < len(text) <= digits and text.isascii() and text.isdigit()):
        return None
    return int(text)


def codepoint(char: str) -> str:
    return f"U+{ord(char):04X}"


def visible(text: str) -> str:
    """`text` with every forbidden character written as its code (`\\x00`, `\\u202e`), so a
    refused input can be recorded and quoted back without carrying what was refused."""
    return _FORBIDDEN_MULTILINE.sub(_escape_char, text)


def without_forbidden(text: str) -> str:
    """`text` with every forbidden character left out (tab and newline kept): for what a
    machine sent, which is kept rather than refused."""
    return _FORBIDDEN_MULTILINE.sub("", text)


REPLACED = "\ufffd"  # what marked_forbidden puts in place of each forbidden character


def marked_forbidden(text: str) -> str:
    """`text` with each forbidden character replaced by REPLACED, one for one (tab and
    newline kept): for a value whose length and positions must stay those sent (an alert's
    label value, matched by a silence character by character)."""
    return _FORBIDDEN_MULTILINE.sub(REPLACED, text)


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def excerpt(text: str, limit: int) -> str:
    """At most `limit` characters of `text`, saying how long the whole was when cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"
