"""What a Web API call does beyond the call, counted against the Slack double over HTTP: no
debug line built for a log level that drops it, one conversations.open per person written
to, and the same JSON on the wire as slack_sdk's chat_postMessage would send."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from bot.app import build_client
from bot.console.workspace import SlackDouble
from bot.errors import NotifierError
from bot.slack.client import PacedWebClient
from bot.slack.limits import SlackLimits
from bot.slack.notifier import SlackNotifier
from tests.harness import PACE_SCALE, openapi_spec


class Counted(str):
    """Text that counts how often it is formatted for a log line (repr) rather than sent."""

    reprs = 0

    def __repr__(self) -> str:
        Counted.reprs += 1
        return super().__repr__()


@pytest.fixture
async def slack() -> AsyncIterator[SlackDouble]:
    double = SlackDouble(openapi_spec=openapi_spec(), users={"U0ALICE": {"name": "alice"}})
    await double.start()
    yield double
    await double.stop()
    assert double.violations == [], double.violations


@pytest.fixture
async def client(slack: SlackDouble) -> AsyncIterator[PacedWebClient]:
    # Slack's clock sped up as in the e2e tests: a third post to one channel waits 1/20 s for
    # its slot, not 1 s (nothing here is about the pace).
    made = build_client(slack.bot_token, slack.api_url, limits=SlackLimits(scale=PACE_SCALE))
    assert isinstance(made, PacedWebClient)
    made.keep_connections()
    yield made
    await made.close_connections()


async def test_no_debug_line_is_built_unless_debug_is_on(
    slack: SlackDouble, client: PacedWebClient, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = SlackNotifier(client)
    caplog.set_level(logging.INFO, logger="slack_sdk")
    Counted.reprs = 0
    await notifier.direct_message("U0ALICE", Counted("Checkout is down"))
    await client.with_token(slack.bot_token).chat_postMessage(
        channel="U0ALICE", text=Counted("Checkout is down")
    )
    assert Counted.reprs == 0
    assert not [r for r in caplog.records if r.name.startswith("slack_sdk")]

    # With DEBUG on, slack_sdk's lines are written as before, the token kept out of them.
    caplog.set_level(logging.DEBUG, logger="slack_sdk")
    await notifier.direct_message("U0ALICE", Counted("Checkout is still down"))
    assert Counted.reprs > 0
    sent = [r.getMessage() for r in caplog.records if r.name == "slack_sdk.web.async_client"]
    assert any("Sending a request" in line and "Checkout is still down" in line for line in sent)
    assert not any(slack.bot_token in line for line in sent)


async def test_a_person_written_to_twice_is_one_conversations_open(
    slack: SlackDouble, client: PacedWebClient
) -> None:
    notifier = SlackNotifier(client)
    first = await notifier.direct_message("U0ALICE", "You are paged for INC-1")
    second = await notifier.direct_message("U0ALICE", "You are paged for INC-2")
    assert first.channel == second.channel
    assert len(slack.calls_to("conversations.open")) == 1
    assert [m["text"] for m in slack.messages(first.channel)] == [
        "You are paged for INC-1",
        "You are paged for INC-2",
    ]


async def test_a_dm_channel_that_stopped_taking_posts_is_opened_again(
    slack: SlackDouble, client: PacedWebClient
) -> None:
    notifier = SlackNotifier(client)
    first = await notifier.direct_message("U0ALICE", "You are paged for INC-1")
    slack.fail("chat.postMessage", "channel_not_found", channel=first.channel)
    second = await notifier.direct_message("U0ALICE", "You are paged for INC-2")
    assert second.channel == first.channel
    assert len(slack.calls_to("conversations.open")) == 2
    assert [m["text"] for m in slack.messages(first.channel)][-1] == "You are paged for INC-2"


async def test_a_transient_failure_in_a_known_dm_is_told_as_it_is(
    slack: SlackDouble, client: PacedWebClient
) -> None:
    notifier = SlackNotifier(client)
    first = await notifier.direct_message("U0ALICE", "You are paged for INC-1")
    slack.rate_limit("chat.postMessage", retry_after=2, channel=first.channel)
    with pytest.raises(NotifierError) as caught:
        await notifier.direct_message("U0ALICE", "You are paged for INC-2")
    assert caught.value.retryable and caught.value.retry_after == 2
    assert len(slack.calls_to("conversations.open")) == 1


async def test_a_post_sends_what_chat_post_message_sends(
    slack: SlackDouble, client: PacedWebClient
) -> None:
    notifier = SlackNotifier(client)
    card = [{"type": "section", "text": {"type": "mrkdwn", "text": "*INC-1* Checkout"}}]
    dm = await notifier.direct_message("U0ALICE", "hello")
    await notifier.post(dm.channel, "INC-1 Checkout", card, thread_ts=None, unfurl_links=False)
    await client.chat_postMessage(
        channel=dm.channel, text="INC-1 Checkout", blocks=card, unfurl_links=False
    )
    ours, theirs = slack.calls_to("chat.postMessage")[-2:]
    assert ours.ok and theirs.ok
    assert ours.params == theirs.params
    assert "thread_ts" not in ours.params
