"""Other sessions' SQL text, as it may leave the bot: every literal replaced by a placeholder.

`pg_stat_activity.query` and `pg_stat_statements.query` hold what other sessions sent, with
whatever they put in it: `ALTER ROLE app PASSWORD '...'`, a bearer token, a customer's
e-mail in a WHERE clause. Diagnosis evidence, remediation previews and the audit log (which
cannot forget: its entries are hash-chained) show that text only through `shown_query`.

Placeholders (the default) follow PostgreSQL's own grammar, through libpg_query's scanner
(pglast), the way pg_stat_statements normalises a statement:
- string constants of every form ('...', E'...', U&'...', $tag$...$tag$), bit and hex strings,
  integer and numeric constants become `$1`, `$2`..., numbered after the highest parameter the
  text already holds; identifiers, keywords and operators stay.
- comments are dropped: they are free text and may hold anything.
- text the scanner cannot read on from (cut by `track_activity_query_size` inside a literal,
  or not SQL) ends where the scanner stopped, marked `…`: what it holds is never guessed at.
A catalog entry may opt in to verbatim text (`show_query_text: verbatim`). Both forms are
one line, clipped, and pass through `redact_text` (passwords, tokens, registered secrets).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from bot.redact import redact_text

if TYPE_CHECKING:
    from pglast import parser

QueryTextMode = Literal["placeholders", "verbatim"]
PLACEHOLDERS: QueryTextMode = "placeholders"
VERBATIM: QueryTextMode = "verbatim"

_LITERALS = frozenset({"SCONST", "USCONST", "BCONST", "XCONST", "ICONST", "FCONST"})
_COMMENTS = frozenset({"C_COMMENT", "SQL_COMMENT"})
CUT = "…"
# Only the start of a long statement is shown: scanning more would change nothing shown.
_SCAN_CHARS = 4000


def with_placeholders(sql: str) -> str:
    """`sql` with every literal a numbered placeholder and no comments, on one line."""
    # Imported here: libpg_query (about 3 MB) is only needed once a diagnosis shows SQL.
    from pglast import parser

    text, cut = sql, False
    if "\x00" in text:  # the scanner (C) would stop there; so do we, visibly
        text, cut = text.split("\x00", 1)[0], True
    if len(text) > _SCAN_CHARS:
        text, cut = text[:_SCAN_CHARS], True
    text = text.encode("utf-8", "replace").decode("utf-8")  # a lone surrogate cannot be scanned
    while True:
        try:
            tokens = parser.scan(text)
            break
        except parser.ParseError as exc:
            # The scanner names where it stopped (an unterminated literal, comment or
            # identifier, a malformed escape): keep what lies before, drop the rest.
            stopped = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else 0
            text, cut = text[: max(0, min(stopped, len(text) - 1))], True
    number = max((_param_number(text, t) for t in tokens if t.name == "PARAM"), default=0)
    parts: list[str] = []
    after = 0  # where the last token shown ended: a gap before the next becomes one space
    for token in tokens:
        if token.name in _COMMENTS:
            continue
        if parts and token.start > after:
            parts.append(" ")
        if token.name in _LITERALS:
            number += 1
            parts.append(f"${number}")
        else:
            parts.append(text[token.start : token.end + 1])
        after = token.end + 1
    if cut:
        parts.append(f" {CUT}" if parts else CUT)
    return "".join(parts)


def _param_number(text: str, token: parser.Token) -> int:
    digits = text[token.start + 1 : token.end + 1]
    return int(digits) if digits.isdigit() else 0


def shown_query(sql: str | None, mode: QueryTextMode = PLACEHOLDERS, *, limit: int = 300) -> str:
    """Another session's statement as the bot may show it: one line of at most `limit`
    characters, literals as placeholders unless `mode` is verbatim, secrets masked."""
    if not sql:
        return ""
    if mode == VERBATIM:
        line = " ".join(sql.replace("\x00", " ").split())
    else:
        line = with_placeholders(sql)
    line = redact_text(line)
    return line if len(line) <= limit else line[: limit - 1] + CUT
