"""The ack gate (bot.slack.acks): a listener's post-ack work waits for the answers in flight,
and for no longer than its hold."""

from __future__ import annotations

import asyncio
from contextlib import ExitStack

from bot.slack.acks import AckGate


async def _turns(count: int = 5) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


async def test_nothing_in_flight_nothing_to_wait_for() -> None:
    gate = AckGate(hold_seconds=60)
    await gate.quiet()
    assert gate.pending == 0
    assert gate.held_too_long == 0


async def test_post_ack_work_waits_for_every_answer_in_flight() -> None:
    gate = AckGate(hold_seconds=60)
    with ExitStack() as second:
        with ExitStack() as first:
            first.enter_context(gate.answering())
            second.enter_context(gate.answering())
            waiting = asyncio.ensure_future(gate.quiet())
            await _turns()
            assert not waiting.done()
        await _turns()  # the first answer is written; the second is not
        assert not waiting.done()
        assert gate.pending == 1
    await asyncio.wait_for(waiting, 10)  # a bound on a hang, not a timing
    assert gate.pending == 0
    assert gate.held_too_long == 0


async def test_a_stream_of_requests_holds_the_work_back_only_so_long() -> None:
    gate = AckGate(hold_seconds=0.01)
    with gate.answering():  # an answer that never comes
        await gate.quiet()
    assert gate.held_too_long == 1
