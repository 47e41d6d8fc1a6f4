"""The pacer's slots: order kept, bursts spent, Retry-After held, shared through Redis."""

from __future__ import annotations

import pytest

from bot.console.workspace.limits import RateLimiter
from bot.slack.limits import SlackLimits, tier_of
from bot.slack.pace import LocalPacer, RedisPacer, keys_for


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_tiers_are_named_for_the_methods_the_bot_calls() -> None:
    assert tier_of("conversations.create") == 2
    assert tier_of("conversations.invite") == 3
    assert tier_of("views.open") == 4
    assert tier_of("apps.connections.open") == 1
    assert tier_of("chat.postMessage") is None  # its own limit: a second per channel


def test_posts_to_one_channel_leave_a_second_apart_after_the_burst() -> None:
    ticks = Ticks()
    pacer = LocalPacer(ticks)
    limits = SlackLimits().for_pacer()
    keys = keys_for("chat.postMessage", {"channel": "C1"}, limits)
    waits = [pacer.reserve_now(keys) for _ in range(5)]
    # The burst (2) at once, then one a second, in the order asked.
    assert waits == pytest.approx([0.0, 0.0, 1.0, 2.0, 3.0])
    other = keys_for("chat.postMessage", {"channel": "C2"}, limits)
    assert pacer.reserve_now(other) == 0.0  # another channel does not wait


def test_a_pacer_that_keeps_to_its_slots_never_meets_the_doubles_429() -> None:
    ticks = Ticks()
    pacer, slack = LocalPacer(ticks), RateLimiter(SlackLimits(), ticks)
    sent = 0
    for _ in range(40):
        keys = keys_for("conversations.invite", {}, SlackLimits().for_pacer())
        ticks.now += pacer.reserve_now(keys)
        assert slack.retry_after("conversations.invite", {}) is None
        sent += 1
    assert sent == 40
    # Unpaced, the double refuses with Retry-After as Slack does.
    refused = [slack.retry_after("conversations.invite", {}) for _ in range(10)]
    assert any(wait is not None and wait >= 1 for wait in refused)


def test_a_hold_delays_every_later_call_under_its_keys() -> None:
    ticks = Ticks()
    pacer = LocalPacer(ticks)
    keys = keys_for("pins.add", {}, SlackLimits().for_pacer())
    assert pacer.reserve_now(keys) == 0.0
    ticks.now += 10
    import asyncio

    asyncio.run(pacer.hold(keys, 30))
    assert pacer.reserve_now(keys) >= 30


@pytest.mark.redis
async def test_two_replicas_share_their_slots_through_redis(redis_url: str) -> None:
    first, second = RedisPacer(redis_url), RedisPacer(redis_url)
    try:
        keys = keys_for("chat.postMessage", {"channel": "C9"}, SlackLimits(channel_burst=1))
        waits = [await first.reserve(keys), await second.reserve(keys), await first.reserve(keys)]
        # One a second for the channel, whichever replica asks: the third waits two slots.
        assert waits[0] == 0.0
        assert 0.5 < waits[1] <= 1.0
        assert 1.5 < waits[2] <= 2.0
        await second.hold(keys, 20)
        assert await first.reserve(keys) >= 19
    finally:
        await first.close()
        await second.close()


async def test_redis_down_paces_on_the_process_alone() -> None:
    errors: list[Exception] = []
    pacer = RedisPacer("redis://127.0.0.1:9/0", timeout=0.2, on_error=errors.append)
    try:
        keys = keys_for("chat.postMessage", {"channel": "C1"}, SlackLimits(channel_burst=1))
        assert await pacer.reserve(keys) == 0.0
        assert await pacer.reserve(keys) > 0.5  # still paced, by this process
        assert errors
    finally:
        await pacer.close()
