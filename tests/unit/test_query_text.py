"""Other sessions' SQL leaves the bot with its literals as placeholders, read by PostgreSQL's
own scanner (libpg_query through pglast): every constant form, comments, text cut short by
track_activity_query_size, text that is not SQL; verbatim only by the catalog's opt-in, and
even then with passwords and bearer tokens masked."""

from __future__ import annotations

import pytest

from bot.catalog import PostgresTarget
from bot.errors import ConfigError
from bot.redact import redact_text
from bot.sqltext import shown_query, with_placeholders
from tests.diagnostics_helpers import policy_with


@pytest.mark.parametrize(
    ("sql", "shown"),
    [
        ("ALTER ROLE app PASSWORD 'hunter2secret'", "ALTER ROLE app PASSWORD $1"),
        (
            "SELECT * FROM customers WHERE email = 'jane.customer@example.com' AND id > 42",
            "SELECT * FROM customers WHERE email = $1 AND id > $2",
        ),
        # E'', U&'', dollar-quoted (tagged or not), bit, hex, numeric, negative, typed.
        (
            "SELECT E'a\\'b', U&'d\\0061t', $$x$$, $tag$y$tag$, b'01', x'ff', 1.5e3, -7,"
            " interval '1 day', '{\"k\": 1}'::jsonb",
            "SELECT $1, $2, $3, $4, $5, $6, $7, -$8, interval $9, $10::jsonb",
        ),
        # Parameters already there keep their numbers; new ones follow the highest.
        (
            "UPDATE t SET a = $2 WHERE b = 'x' AND c = $1",
            "UPDATE t SET a = $2 WHERE b = $3 AND c = $1",
        ),
        # Comments are free text: dropped.
        (
            "SELECT 1 /* user=jane@example.com */ -- token abc\nFROM t",
            "SELECT $1 FROM t",
        ),
        # A lone surrogate (not UTF-8) is no reason to show the literal.
        ("SELECT '\udc80 jane@example.com'", "SELECT $1"),
        # Doubled quotes inside a literal do not end it.
        ("SELECT 'it''s secret', 2", "SELECT $1, $2"),
        ("", ""),
    ],
)
def test_every_literal_becomes_a_placeholder(sql: str, shown: str) -> None:
    assert with_placeholders(sql) == shown


@pytest.mark.parametrize(
    ("sql", "shown"),
    [
        # Cut by track_activity_query_size inside a literal, a comment, a dollar quote.
        ("ALTER ROLE app PASSWORD 'hunter2sec", "ALTER ROLE app PASSWORD …"),
        ("SELECT 1 /* customer jane@exam", "SELECT $1 …"),
        ("SELECT $q$Bearer abcdefghijklm", "SELECT …"),
        ('SELECT "half an identif', "SELECT …"),
        # Not SQL the scanner can read on from: what follows is never guessed at.
        ("SELECT E'\\u12' , 'jane@example.com'", "SELECT …"),
        ("SELECT 123abc, 'jane@example.com'", "SELECT …"),
        # A NUL stops the C scanner; the text after it is not shown either.
        ("SELECT 'a' \x00 'jane@example.com'", "SELECT $1 …"),
    ],
)
def test_text_the_scanner_stops_in_is_cut_there(sql: str, shown: str) -> None:
    assert with_placeholders(sql) == shown


def test_shown_query_is_one_clipped_line() -> None:
    sql = "SELECT  id,\n\tname FROM  orders WHERE note = 'x'" + " AND id = 1" * 100
    line = shown_query(sql, limit=60)
    assert len(line) == 60 and line.endswith("…") and "\n" not in line
    assert line.startswith("SELECT id, name FROM orders WHERE note = $1 AND id = $2")
    assert shown_query(None) == "" and shown_query("") == ""


def test_a_huge_statement_is_read_only_as_far_as_it_can_be_shown() -> None:
    sql = "SELECT * FROM t WHERE id IN (" + ", ".join(str(n) for n in range(100_000)) + ")"
    line = shown_query(sql, limit=300)
    assert line.startswith("SELECT * FROM t WHERE id IN ($1, $2, $3,") and len(line) == 300
    assert "99999" not in line


def test_verbatim_is_an_opt_in_and_still_masks_passwords_and_tokens() -> None:
    sql = (
        "ALTER ROLE app PASSWORD 'hunter2secret'; SELECT 'Authorization: Bearer eyJhbGciOi.x-y_z'"
        " WHERE email = 'jane.customer@example.com'"
    )
    verbatim = shown_query(sql, "verbatim")
    assert "jane.customer@example.com" in verbatim  # what the opt-in is for
    assert "hunter2secret" not in verbatim and "eyJhbGciOi" not in verbatim
    assert "PASSWORD '***'" in verbatim and "Bearer ***" in verbatim
    placeholders = shown_query(sql)
    assert placeholders == "ALTER ROLE app PASSWORD $1; SELECT $2 WHERE email = $3"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("ALTER ROLE app PASSWORD 'hunter2secret'", "hunter2secret"),
        ("create role x login encrypted password 'it''s hunter2' valid until 'y'", "hunter2"),
        ("ALTER USER app WITH PASSWORD $pw$hunter2 secret$pw$;", "hunter2"),
        ("ALTER ROLE app PASSWORD E'hunter\\'2'", "hunter"),
        ("ALTER ROLE app PASSWORD 'hunter2-cut-short", "hunter2"),
        ("curl -H 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig_-+/='", "eyJhbGciOi"),
        ("authorization: bearer abc123token", "abc123token"),
        ("host=db password = 'two words' user=app", "two words"),
    ],
)
def test_redact_text_masks_sql_passwords_and_bearer_tokens(text: str, secret: str) -> None:
    masked = redact_text(text)
    assert secret not in masked, masked
    assert "***" in masked


def test_redact_text_leaves_prose_about_passwords_alone() -> None:
    text = "rotate the password, then ALTER ROLE app PASSWORD NULL"
    assert redact_text(text) == text


def test_the_catalog_option_is_validated() -> None:
    assert PostgresTarget(dsn_env="DB").show_query_text == "placeholders"
    verbatim = PostgresTarget(dsn_env="DB", show_query_text="verbatim")
    assert verbatim.show_query_text == "verbatim"
    with pytest.raises(ConfigError, match="show_query_text"):
        policy_with({"svc": {"postgres": {"dsn_env": "DB", "show_query_text": "raw"}}})
