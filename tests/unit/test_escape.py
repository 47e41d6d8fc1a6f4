"""bot.slack.escape: what a person typed reaches Slack as text, never as a ping."""

from __future__ import annotations

import random
import re

import pytest

from bot.slack.escape import escape_mrkdwn, from_slack, topic_text

# What Slack reads as a control sequence in mrkdwn, a message's text or a topic.
CONTROL_SEQUENCE = re.compile(r"<[^<>]*>")


@pytest.mark.parametrize(
    ("sent", "seen"),
    [
        # What Slack sends for @channel, @here, @everyone (with should_escape: true).
        ("<!channel> checkout down", "@channel checkout down"),
        ("<!here|here> look", "@here look"),
        ("<!everyone>", "@everyone"),
        ("ping <!subteam^S0SRE|@sre> and <!subteam^S0DBA>", "ping @sre and @S0DBA"),
        ("ask <@U0BOB|bob> or <@U0CAROL>", "ask @bob or @U0CAROL"),
        ("see <#C0INC|incidents>", "see #incidents"),
        ("<https://status.example.com>", "https://status.example.com"),
        (
            "<https://evil.example|https://status.example>",
            "https://status.example (https://evil.example)",
        ),
        ("<mailto:ops@example.com|ops@example.com>", "ops@example.com"),
        ("<!date^1764547200^{date}|2025-12-01>", "2025-12-01"),
        # Characters typed literally arrive as entities: decoded once, never twice.
        ("a &lt; b &amp;&amp; c &gt; d", "a < b && c > d"),
        ("&amp;lt;!channel&amp;gt;", "&lt;!channel&gt;"),
        ("typed &lt;!channel&gt; literally", "typed <!channel> literally"),
    ],
)
def test_from_slack_shows_what_the_reader_saw(sent: str, seen: str) -> None:
    assert from_slack(sent) == seen


@pytest.mark.parametrize(
    ("plain", "mrkdwn"),
    [
        ("@channel checkout down", "@channel checkout down"),
        ("typed <!channel> literally", "typed &lt;!channel&gt; literally"),
        ("R&D <@U0BOB> <https://x|y>", "R&amp;D &lt;@U0BOB&gt; &lt;https://x|y&gt;"),
    ],
)
def test_escape_mrkdwn(plain: str, mrkdwn: str) -> None:
    assert escape_mrkdwn(plain) == mrkdwn


def test_topic_text_has_no_angle_brackets() -> None:
    assert topic_text("typed <!channel> & <@U0BOB>") == "typed ‹!channel› & ‹@U0BOB›"


PIECES = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<!subteam^S0SRE|@sre>",
    "<@U0BOB|bob>",
    "<@U0BOB>",
    "<https://evil.example|status>",
    "<#C0INC>",
    "&lt;",
    "&gt;",
    "&amp;",
    "<",
    ">",
    "&",
    "|",
    "!",
    "@",
    "^",
    "word",
    " ",
]


def test_nothing_survives_the_round_trip_as_markup() -> None:
    """Whatever Slack sends, once decoded and escaped it holds no control sequence."""
    rng = random.Random(7)
    for _ in range(2000):
        sent = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 12)))
        plain = from_slack(sent)
        assert CONTROL_SEQUENCE.search(escape_mrkdwn(plain)) is None, sent
        assert "<" not in topic_text(plain) and ">" not in topic_text(plain), sent
