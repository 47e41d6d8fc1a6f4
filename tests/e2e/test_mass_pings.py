"""No mass pings through the bot (issue 7.1).

`/incident declare P1 <!channel> checkout down` is what Slack sends when someone types
@channel. Whatever a person writes (titles, messages, impact, notes, reasons, modal fields, a
message copied to the timeline by :pushpin:) must reach Slack as text: in the announcement,
the war room, its topic, the on-call's direct message, the card edits and every answer. The
bot's own mentions (the declarer, the people it pages) are the only markup that may appear.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from bot.refs import Person
from bot.slack import blocks, modals
from tests.e2e.incident_helpers import (
    ANNOUNCE,
    declare,
    human_message,
    pinned_summary,
    posts,
    reply,
)
from tests.harness import BotHarness
from tests.waiting import until

# What Slack would read as a broadcast, or as a mention or a link nobody in the bot meant.
BROADCAST = re.compile(r"<!(channel|here|everyone|group)\b")
INJECTED = re.compile(r"<(@U0MALLORY|!subteam\^S0EVIL|https?://evil)")
ANY_MENTION = re.compile(r"<(@[UW][A-Z0-9]+|!subteam\^[A-Z0-9]+)")
# Who the bot itself may mention here: the declarer, the actors, the people it pages.
MEANT = {"@U0ALICE", "@U0BOB", "@U0CAROL", "@U0ONCALL", "@U0ENGLEAD"}

# As Slack sends them with should_escape: @channel and mentions as markup, typed `<`, `>`
# and `&` as entities.
TITLE = "<!channel> checkout &lt;!here&gt; &amp; cart down"
TITLE_SEEN = "@channel checkout <!here> & cart down"  # what the person saw, stored as it is


def markup_texts(value: Any, *, key: str = "") -> Iterator[str]:
    """Every string in a Web API call or response_url post that Slack reads as markup: a
    message's `text`, mrkdwn objects, a topic. plain_text objects are shown literally."""
    if isinstance(value, dict):
        if value.get("type") == "plain_text":
            return
        for name, item in value.items():
            if isinstance(item, str) and name in ("text", "topic"):
                yield item
            else:
                yield from markup_texts(item, key=name)
    elif isinstance(value, list):
        for item in value:
            yield from markup_texts(item, key=key)


def plain_texts(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if value.get("type") == "plain_text" and isinstance(value.get("text"), str):
            yield value["text"]
        for item in value.values():
            yield from plain_texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from plain_texts(item)


def everything_sent(harness: BotHarness) -> list[tuple[str, Any]]:
    sent: list[tuple[str, Any]] = [(c.method, c.params) for c in harness.double.calls]
    sent += [("response_url", r.payload) for r in harness.double.responses]
    return sent


def assert_nobody_pinged_by_users(harness: BotHarness) -> None:
    for where, payload in everything_sent(harness):
        for text in markup_texts(payload):
            assert not BROADCAST.search(text), (where, text)
            assert not INJECTED.search(text), (where, text)
            unmeant = set(ANY_MENTION.findall(text)) - MEANT
            assert not unmeant, (where, text)


async def test_user_text_reaches_slack_as_text_everywhere(harness: BotHarness) -> None:
    incident = await declare(harness, f"declare P1 {TITLE}")
    assert incident.title == TITLE_SEEN
    room = incident.channel_id or ""
    await reply(
        harness,
        "update identified <!here> bad deploy of <https://evil.example|status page> "
        "impact <!subteam^S0EVIL|@everyone-eu> cannot pay",
        channel_id=room,
        user_id="U0BOB",
    )
    await reply(harness, "note ask <@U0MALLORY|mallory> &lt;!everyone&gt;", channel_id=room)
    await reply(harness, "escalate <!channel> wake up", channel_id=room)

    async def paged() -> bool:  # fired by the escalation engine, paced like every post
        return "@channel wake up" in " ".join(str(c.params) for c in posts(harness, room))

    await until(paged)
    pinned = human_message(harness, room, "U0CAROL", "<!channel> <@U0MALLORY> rolled back")
    await harness.event(
        {
            "type": "reaction_added",
            "user": "U0BOB",
            "reaction": "pushpin",
            "item": {"type": "message", "channel": room, "ts": pinned},
            "event_ts": pinned,
        }
    )
    await until(lambda: _copied(harness, incident.id))
    await reply(harness, "timeline", channel_id=room)
    await reply(harness, "list")
    await reply(harness, "resolve <!everyone> fixed by <@U0MALLORY>", channel_id=room)
    await harness.settle()

    assert_nobody_pinged_by_users(harness)

    # ...and what they wrote is there, readable: escaped in mrkdwn, literal in plain text.
    [announcement] = [c for c in posts(harness, ANNOUNCE) if c.params.get("blocks")][:1]
    assert announcement.params["text"].startswith(
        "Incident Update: @channel checkout &lt;!here&gt; &amp; cart down |"
    )
    header = announcement.params["blocks"][0]["text"]
    assert (header["type"], header["text"]) == ("plain_text", f"{incident.id}: {TITLE_SEEN}")
    topics = [c.params["topic"] for c in harness.double.calls_to("conversations.setTopic")]
    assert topics and all("@channel checkout ‹!here› & cart down" in t for t in topics)
    war_room = " ".join(str(c.params) for c in posts(harness, room))
    for shown in (
        "@here bad deploy of status page (https://evil.example)",
        "@everyone-eu cannot pay",
        "ask @mallory &lt;!everyone&gt;",
        "@channel wake up",
    ):
        assert shown in war_room, shown
    dm_texts = [
        str(c.params["text"])
        for c in harness.double.calls_to("chat.postMessage")
        if str(c.params.get("channel", "")).startswith("D")
    ]
    assert any("@channel checkout &lt;!here&gt; &amp; cart down" in t for t in dm_texts)
    timeline = [e for e in await harness.services.incidents.timeline(incident.id)]
    copied = next(e for e in timeline if e.kind == "message_added")
    assert (copied.parts, copied.said) == (
        (Person("U0CAROL"), ": @channel @U0MALLORY rolled back"),
        "@channel @U0MALLORY rolled back",
    )


async def test_modal_text_is_escaped_in_messages_and_literal_in_the_form(
    harness: BotHarness,
) -> None:
    """Modal fields arrive as typed (not as markup): `<!channel>` there is literal text."""
    await harness.command("declare", channel_id="C0GENERAL")
    [opened] = await harness.double.wait_for("views.open")
    values = {
        "title": {"value": "Modal <!channel> & <@U0MALLORY>"},
        "severity": {"value": {"type": "static_select", "selected_option": {"value": "P1"}}},
        "impact": {"value": "<!here> EU"},
        "services": {"value": "<!everyone>, cart"},
    }
    view = opened.response["view"]
    response = await harness.submit_view(modals.DECLARE_VIEW, values, view=view, user_id="U0BOB")
    assert response.status == 200
    await harness.double.wait_for("chat.postEphemeral")
    await harness.settle()
    [incident] = await harness.services.incidents.list()
    assert incident.title == "Modal <!channel> & <@U0MALLORY>"
    room = incident.channel_id or ""
    await reply(harness, "update monitoring Fix is out", channel_id=room, user_id="U0BOB")
    await harness.settle()
    summary = pinned_summary(harness, room)
    await harness.click(
        blocks.UPDATE_ACTION,
        message=summary,
        channel_id=room,
        user_id="U0BOB",
        message_ts=summary["ts"],
    )
    [filled] = await harness.double.wait_for("views.update")

    assert_nobody_pinged_by_users(harness)
    card = str(summary["blocks"])
    assert "&lt;!here&gt; EU" in card and "&lt;!everyone&gt;, cart" in card
    heading, *inputs = filled.params["view"]["blocks"]
    # The form shows the title escaped in its mrkdwn section, the impact literally to edit.
    assert "Modal &lt;!channel&gt; &amp; &lt;@U0MALLORY&gt;" in heading["text"]["text"]
    form = {b["block_id"]: b["element"] for b in inputs}
    assert form["impact"]["initial_value"] == "<!here> EU"
    headers = " ".join(plain_texts([c.params for c in harness.double.calls]))
    assert f"{incident.id}: Modal <!channel> & <@U0MALLORY>" in headers


async def _copied(harness: BotHarness, incident_id: str) -> bool:
    timeline = await harness.services.incidents.timeline(incident_id)
    return any(e.kind == "message_added" for e in timeline)
