"""An update's words as the public may read them: mentions become plain names or go.

Stored text is plain (bot.slack.escape.from_slack turned Slack's markup into what a person
saw), so `@alice` is a name and stays. What would name someone by a Slack ID, or reads as
Slack's own markup (typed literally into a form), is rewritten: a labelled mention keeps its
label, an ID alone becomes "a team member". Anything else, `<script>` included, is left as
it is for the template engine to escape, but for the characters XML cannot hold at all
(U+FFFE, U+FFFF and the control characters but tab and newline): one of them in a title made
the whole Atom feed unreadable, so each is shown as U+FFFD, on the page and in its feeds.
Secrets a person pasted (a connection string's password, a Slack token, the bot's own keys)
are masked as they are on the timeline and in the audit log (bot.redact).
"""

from __future__ import annotations

import re

from bot.redact import redact_text

# `<@U123>`, `<@U123|alice>`, `<!subteam^S1|@sre>`, `<#C1|general>`, `<!channel>`: exact shapes
# only, so `<b>` or `<script>` typed by a person are not taken for markup.
_MARKUP = re.compile(
    r"<(?P<kind>@|#|!subteam\^)(?P<id>[A-Z0-9]{2,})(?:\|(?P<label>[^<>|]*))?>"
    r"|<!(?P<broadcast>channel|here|everyone)>"
)
# A bare Slack ID after an @: what from_slack leaves of `<@U123>` without a label.
_BARE_ID = re.compile(r"@(?:[UWS][A-Z0-9]{6,})\b")
NOBODY = "a team member"
# Outside XML 1.0's characters (its `Char` production), lone surrogates included.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def public_text(text: str) -> str:
    """`text` with every mention as a plain name, or as "a team member" where only an ID is
    known, and every secret bot.redact knows the shape of masked."""
    text = redact_text(_MARKUP.sub(_shown, text))
    return _NOT_XML.sub("\ufffd", _BARE_ID.sub(NOBODY, text))


def _shown(match: re.Match[str]) -> str:
    if match.group("broadcast"):
        return "@" + match.group("broadcast")
    label = (match.group("label") or "").strip().lstrip("@#")
    if match.group("kind") == "#":
        return "#" + label if label else "a channel"
    return "@" + label if label else NOBODY
