"""Slack faults, scripted on the Web API double and met by the real notifier over HTTP: every
transient one (5xx, a body that is not Slack's JSON, 429, a dead or silent server) is a
retryable NotifierError, with Slack's Retry-After; a permanent one is not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.console.workspace import SlackDouble
from bot.errors import NotifierError
from bot.slack.notifier import SlackNotifier, call_slack
from tests.harness import openapi_spec
from tests.servers import free_port


@pytest.fixture
async def slack() -> AsyncIterator[SlackDouble]:
    double = SlackDouble(openapi_spec=openapi_spec())
    await double.start()
    yield double
    await double.stop()
    assert double.violations == [], double.violations


@pytest.fixture
def notifier(slack: SlackDouble) -> SlackNotifier:
    return SlackNotifier(AsyncWebClient(token=slack.bot_token, base_url=slack.api_url))


async def _error(notifier: SlackNotifier, channel: str = "C0INC") -> NotifierError:
    with pytest.raises(NotifierError) as caught:
        await notifier.post(channel, "Checkout is down")
    return caught.value


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (503, "Service Unavailable", "text/plain"),
        (500, "upstream connect error or disconnect/reset before headers", "text/plain"),
        (502, "<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),
        (502, "<html>Bad Gateway</html>", "application/json"),  # says JSON, is not
        (200, "OK", "text/plain"),  # a proxy's answer, not Slack's
    ],
)
async def test_an_answer_that_is_not_slacks_json_is_retryable(
    slack: SlackDouble, notifier: SlackNotifier, status: int, body: str, content_type: str
) -> None:
    slack.http_error("chat.postMessage", status=status, body=body, content_type=content_type)
    error = await _error(notifier)
    assert error.retryable, error
    assert error.retry_after is None
    assert str(status) in str(error) or "not JSON" in str(error)
    # The fault was one answer: the next attempt is delivered.
    ref = await notifier.post("C0INC", "Checkout is down")
    assert [m["ts"] for m in slack.messages("C0INC")] == [ref.ts]


async def test_an_attribute_error_of_our_own_is_a_bug_not_a_body_that_is_not_json(
    slack: SlackDouble, notifier: SlackNotifier
) -> None:
    # Issue 15: every AttributeError inside a Web API call was "a body that is not JSON",
    # retryable, so the outbox retried a programming error for 24 hours.
    async def post_with_a_bug() -> AsyncSlackResponse:
        response = await notifier.client.chat_postMessage(channel="C0INC", text="Checkout")
        message: dict[str, str] | None = None
        assert response
        return message.ts  # type: ignore[attr-defined, union-attr]

    with pytest.raises(AttributeError):
        await call_slack(post_with_a_bug())


async def test_a_5xx_with_slacks_json_is_retryable(
    slack: SlackDouble, notifier: SlackNotifier
) -> None:
    slack.http_error("chat.postMessage", status=503)
    error = await _error(notifier)
    assert error.retryable and error.error_code == "internal_error"


async def test_a_run_of_429s_carries_slacks_retry_after(
    slack: SlackDouble, notifier: SlackNotifier
) -> None:
    slack.rate_limit("chat.postMessage", retry_after=7, times=2)
    for _ in range(2):
        error = await _error(notifier)
        assert (error.retryable, error.error_code, error.retry_after) == (True, "ratelimited", 7.0)
    await notifier.post("C0INC", "Checkout is down")


async def test_a_permanent_error_is_not_retryable(
    slack: SlackDouble, notifier: SlackNotifier
) -> None:
    slack.fail("chat.postMessage", error="channel_not_found")
    error = await _error(notifier)
    assert (error.retryable, error.error_code) == (False, "channel_not_found")


async def test_faults_can_be_scripted_for_one_channel_by_id_or_name(
    slack: SlackDouble, notifier: SlackNotifier
) -> None:
    slack.add_channel("C0ROOM", "inc-20261127-001-checkout")
    slack.rate_limit("chat.postMessage", retry_after=3, times=2, channel="C0INC")
    slack.http_error(
        "chat.postMessage", status=503, body="down", channel="#inc-20261127-001-checkout"
    )
    await notifier.post("C0OTHER", "not this channel")  # untouched by either fault
    assert (await _error(notifier, "C0ROOM")).retryable
    await notifier.post("C0ROOM", "the 503 was used up")
    for _ in range(2):
        assert (await _error(notifier, "C0INC")).retry_after == 3.0
    await notifier.post("C0INC", "the run of 429s is over")
    answered = [(c.params["channel"], c.http_status) for c in slack.calls_to("chat.postMessage")]
    assert answered == [
        ("C0OTHER", 200),
        ("C0ROOM", 503),
        ("C0ROOM", 200),
        ("C0INC", 429),
        ("C0INC", 429),
        ("C0INC", 200),
    ]


async def test_an_unreachable_slack_is_retryable() -> None:
    port = free_port()  # nobody listens there
    client = AsyncWebClient(token="xoxb-test", base_url=f"http://127.0.0.1:{port}/api/")
    error = await _error(SlackNotifier(client))
    assert error.retryable and "unreachable" in str(error)


async def test_a_slack_that_never_answers_is_retryable() -> None:
    accepted = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        await reader.read()  # read until the client gives up; never answer

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = AsyncWebClient(
        token="xoxb-test", base_url=f"http://127.0.0.1:{port}/api/", timeout=0.3
    )
    try:
        error = await _error(SlackNotifier(client))
    finally:
        server.close()
        await server.wait_closed()
    assert accepted.is_set()
    assert error.retryable and "unreachable" in str(error)
