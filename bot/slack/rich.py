"""Rich text (bot.refs) as Slack mrkdwn: the one place references become mentions.

People are `<@U…>` (the bot's own actor "the bot"), channels `<#C…>`, groups
`<!subteam^S…>`. The bot's own words are written as they are (they may hold mrkdwn such as
dates); the end a person wrote (`said`, see TimelineEvent.said) is escaped, so it shows as
text and pings nobody.
"""

from __future__ import annotations

from bot import refs
from bot.slack.escape import escape_mrkdwn
from bot.slack.templates import channel, user


def mention(ref: refs.Ref) -> str:
    if isinstance(ref, refs.Person):
        return user(ref.user_id)
    if isinstance(ref, refs.Channel):
        return channel(ref.channel_id)
    return user(ref.group_id)  # a group's ID starts with S: `<!subteam^S…>`


def mrkdwn(rich: refs.Rich, said: str = "") -> str:
    """`rich` as mrkdwn, its end `said` (what a person wrote) escaped."""
    try:
        head = refs.words(rich, said)
    except ValueError:  # `said` not its end, as promised: show all of it as text
        return escape_mrkdwn(refs.plain(rich))
    return refs.plain(head, mention) + escape_mrkdwn(said)
