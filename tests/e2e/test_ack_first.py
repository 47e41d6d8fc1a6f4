"""Acks first (bot.slack.acks): Slack's 200 is written the moment a listener acks, and the
listener's work after `await ack()` starts only once that 200 is written (issue 19.2)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest
from slack_bolt.context.ack.async_ack import AsyncAck

from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import count
from tests.waiting import until


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_post_ack_work_starts_after_the_ack_is_written(
    make_harness: HarnessFactory, store: str
) -> None:
    harness = await make_harness(store)
    after_ack: list[tuple[str, bool]] = []

    async def probe(ack: AsyncAck, command: dict[str, Any]) -> None:
        await ack()
        # The first line of post-ack work: by now the server has written this request's 200
        # (Bolt's own runner only looked for the ack 10 ms later, meanwhile this ran).
        after_ack.append((command["text"], getattr(ack, "written", False)))

    harness.bot.app.command("/ackprobe")(probe)
    answers = await asyncio.gather(
        *(harness.command(f"probe {n}", command="/ackprobe") for n in range(8))
    )
    assert [answer.status for answer in answers] == [200] * 8
    await until(lambda: len(after_ack) == 8, "every probe past its ack")
    assert sorted(after_ack) == [(f"probe {n}", True) for n in range(8)]


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_declarations_acked_first_are_each_declared_once(
    make_harness: HarnessFactory, store: str
) -> None:
    harness = await make_harness(store)
    bodies = [harness.slash(f"declare P3 Ack first {n}") for n in range(6)]
    answers = await asyncio.gather(*(harness.sender.send(body) for body in bodies))
    # Slack's retries of the same requests, while the first copies are being worked on.
    retries = await asyncio.gather(*(harness.sender.send(b, retry_num=1) for b in bodies))
    assert [a.status for a in answers + retries] == [200] * 12

    async def declared() -> int:
        return await count(harness, "incidents")

    await until(lambda: _equals(declared(), 6), "six incidents")
    await harness.settle()
    assert await declared() == 6


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected
