"""User text on its way to Slack: the one place where it stops being markup.

Slack reads `<!channel>`, `<!here>`, `<!everyone>`, `<!subteam^S1>`, `<@U1>` and `<url|label>`
in mrkdwn and in a message's top-level text as control sequences. Anything a user typed (or a
system we diagnose returned) is escaped here before it is put into mrkdwn, so it shows as text
and pings nobody. Mentions the bot means to make are built from stored IDs, never from input.
"""

from __future__ import annotations

_MRKDWN_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def escape_mrkdwn(text: str) -> str:
    """`text` as Slack shows it literally in mrkdwn: `&`, `<` and `>` escaped."""
    return text.translate(_MRKDWN_ESCAPES)
