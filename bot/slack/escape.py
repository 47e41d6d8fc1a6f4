"""User text on its way to Slack: the one place where it stops being markup.

Slack reads `<!channel>`, `<!here>`, `<!everyone>`, `<!subteam^S1>`, `<@U1>` and `<url|label>`
in mrkdwn and in a message's top-level text as control sequences. Anything a user typed (or a
system we diagnose returned) goes through here, so it shows as text and pings nobody. Mentions
the bot means to make are built from stored IDs (bot.slack.templates.user), never from input.

Text travels in three shapes, and each has its function:

- In: Slack sends slash-command text (with `should_escape`) and message text in its own
  format: `&`, `<`, `>` typed by a person arrive as entities, and `<...>` is always markup.
  `from_slack` turns that into the plain text a reader saw (`<!channel>` -> `@channel`,
  `<@U1|alice>` -> `@alice`, `a &lt; b` -> `a < b`). The bot stores plain text only.
- Out, mrkdwn (sections, fields, context, a message's top-level `text`): `escape_mrkdwn`.
- Out, plain_text objects (headers, buttons, modal titles, `initial_value`): as they are;
  Slack shows them literally, so escaping there would show `&lt;`.
- Out, a channel topic: `topic_text`. Slack documents topics as "no formatting or
  linkification", yet clients render the `<@U1>` markup a topic holds (the commander's
  mention is one), and whether they decode entities is not documented. Angle brackets are
  therefore swapped for look-alikes: inert whichever way a client reads it.
"""

from __future__ import annotations

import re

_MRKDWN_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_TOPIC_LOOKALIKES = str.maketrans({"<": "\u2039", ">": "\u203a"})  # ‹ ›
# One `<...>` control sequence of Slack-formatted text. `[^<>]*` cannot overlap itself, so the
# scan is linear in the length of the text.
_MARKUP = re.compile(r"<([^<>]*)>")
_ENTITY = re.compile(r"&(amp|lt|gt);")
_PERSON = re.compile(r"(?:@[UW]|!subteam\^S)[A-Z0-9]+(?:\|[^<>]*)?")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
_BROADCASTS = {"channel", "here", "everyone", "group"}
_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*://", re.IGNORECASE)


def escape_mrkdwn(text: str) -> str:
    """`text` as Slack shows it literally in mrkdwn: `&`, `<` and `>` escaped."""
    return text.translate(_MRKDWN_ESCAPES)


def _cut(text: str, limit: int) -> str:
    """The first `limit - 1` characters (room for "…"), less an entity the cut would split."""
    cut = text[: limit - 1]
    amp = cut.rfind("&", max(0, len(cut) - 4))  # the longest entity, `&amp;`, is 5 long
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut


def clip(text: str, limit: int) -> str:
    """At most `limit` characters; a cut never splits an entity such as `&amp;`. For plain
    text (mrkdwn: clip_mrkdwn, which keeps control sequences whole too)."""
    return text if len(text) <= limit else _cut(text, limit) + "…"


def clip_mrkdwn(text: str, limit: int) -> str:
    """At most `limit` characters of mrkdwn, ending "…" when cut. The cut never splits an
    entity (`&amp;` cut to `&am` shows as such) nor a control sequence (a cut `<@U1` or
    `<https://...` shows raw): what it would split is left out whole."""
    if len(text) <= limit:
        return text
    cut = _cut(text, limit)
    opened = cut.rfind("<")
    if opened > cut.rfind(">"):
        cut = cut[:opened]
    return cut + "…"


def topic_text(text: str) -> str:
    """Plain `text` made inert for a channel topic (see the module docstring)."""
    return text.translate(_TOPIC_LOOKALIKES)


def from_slack(text: str, *, keep_people: bool = False) -> str:
    """Slack-formatted text (a slash command's, a message's) as the plain text a reader saw.

    Every control sequence becomes the words it showed, so nothing in it can ping anyone
    once stored: `<!channel>` -> `@channel`, `<@U1|alice>` -> `@alice`, `<@U1>` -> `@U1`,
    `<!subteam^S1|@sre>` -> `@sre`, `<#C1|general>` -> `#general`, `<!date^...|fallback>` ->
    fallback, `<https://x|label>` -> `label (https://x)`; then `&lt;` `&gt;` `&amp;` decoded.
    `keep_people`: a person's or a user group's mention (`<@U1|alice>`) is left as it came,
    for a command whose argument is that person (the rest still reads as typed, in a refusal
    that quotes it).
    """

    def shown(match: re.Match[str]) -> str:
        inner = match.group(1)
        if keep_people and _PERSON.fullmatch(inner):
            return match.group(0)
        return _shown(inner)

    words = _MARKUP.sub(shown, text)
    return _ENTITY.sub(lambda match: _ENTITIES[match.group(1)], words)


def _shown(inner: str) -> str:
    """What one control sequence (without its brackets) shows a reader."""
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        return "@" + (label.removeprefix("@") or target[1:])
    if target.startswith("#"):
        return "#" + (label.removeprefix("#") or target[1:])
    if target.startswith("!"):
        command, _, argument = target[1:].partition("^")
        if command == "date":
            return label or argument.split("^", 1)[-1]
        if command == "subteam":
            return "@" + (label.removeprefix("@") or argument)
        if command in _BROADCASTS:
            return "@" + command
        return label or command
    bare = target.removeprefix("mailto:")
    if not label or label in (target, bare, _SCHEME.sub("", target)):
        return bare
    return f"{label} ({bare})"
