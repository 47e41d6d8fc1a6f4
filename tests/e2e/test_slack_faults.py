"""Slack faults through the whole bot: a 5xx with a text body costs the retry's back-off, not
a claim's minute; under runs of 429s every channel gets its messages in the order they were
written, each once, with one bot process or two sharing PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.console.workspace import RecordedCall
from bot.incidents.effects import ANNOUNCE as ANNOUNCE_EFFECT
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import ANNOUNCE, posts, reply
from tests.escalation_env import policy_without_paging
from tests.harness import BotHarness
from tests.waiting import until


async def _outbox_rows(harness: BotHarness, kind: str) -> list[dict[str, Any]]:
    async with harness.store.transaction() as tx:
        return await tx.fetchall("SELECT * FROM outbox WHERE kind = ? ORDER BY id", (kind,))


async def _deliver_through_faults(clock: FakeClock, *harnesses: BotHarness) -> None:
    """Let each retry come due (fake time) and deliver, until nothing is left."""
    for _ in range(20):
        await asyncio.gather(*(h.settle() for h in harnesses))
        if not await harnesses[0].services.dispatcher.pending_count():
            return
        clock.advance(seconds=2.4)  # a first back-off (2 s +-20%); more than the Retry-After below
    raise AssertionError("the outbox still holds effects after 20 rounds of retries")


def _label(call: RecordedCall) -> str:
    """What a posted message is: a card, a status update (by status), or a notice."""
    text = str(call.params["text"])
    header = (call.params.get("blocks") or [{}])[0].get("text", {}).get("text", "")
    if header.startswith("INC-"):  # the announcement and the summary: "INC-...: title"
        return "card"
    if text.startswith(("Incident Update:", "Incident Resolved:")):
        return "update " + text.split(" | ")[1].split()[-1].upper()
    return "notice " + text.split(" ", 1)[1].split(":")[0]


async def test_one_503_with_a_text_body_delays_the_announcement_by_the_back_off(
    make_harness: HarnessFactory,
) -> None:
    clock = FakeClock(datetime.now(UTC))
    harness = await make_harness("sqlite", clock=clock, policy=policy_without_paging())
    harness.double.http_error(
        "chat.postMessage", status=503, body="Service Unavailable", channel=ANNOUNCE
    )
    await reply(harness, "declare P2 Payments down")
    await harness.settle()
    [row] = await _outbox_rows(harness, ANNOUNCE_EFFECT)
    assert [c.http_status for c in harness.double.calls_to("chat.postMessage")] == [503]
    # Back in the queue at once, due again after the 2 s back-off (+-20%): no claim to wait out.
    assert row["attempts"] == 1 and row["claimed_until"] is None and row["delivered_at"] is None
    assert 1.6 <= row["available_at"] - clock.now().timestamp() <= 2.4
    assert "503" in row["last_error"]

    clock.advance(seconds=2.4)
    await harness.settle()
    [row] = await _outbox_rows(harness, ANNOUNCE_EFFECT)
    assert row["delivered_at"] == clock.now().timestamp() and row["attempts"] == 2
    assert [_label(c) for c in posts(harness, ANNOUNCE)] == ["card"]


async def test_a_run_of_429s_keeps_the_written_order_in_the_announcement_channel(
    make_harness: HarnessFactory,
) -> None:
    """P2 (no war room): the reported bug, where a channel showed an update, a note and the
    resolution before the announcement."""
    clock = FakeClock(datetime.now(UTC))
    harness = await make_harness("sqlite", clock=clock, policy=policy_without_paging())
    harness.double.rate_limit("chat.postMessage", retry_after=0, times=2, channel=ANNOUNCE)
    await reply(harness, "declare P2 Payments down")
    [incident] = await harness.services.incidents.list()
    for command in (
        f"ack {incident.id}",
        f"update {incident.id} identified Bad deploy",
        f"note {incident.id} Rolled back at 14:05",
        f"resolve {incident.id} Rolled back the deploy",
    ):
        await reply(harness, command)
        await harness.settle()  # whatever may go out now, goes
    await _deliver_through_faults(clock, harness)

    sent = posts(harness, ANNOUNCE)
    assert [_label(c) for c in sent] == [
        "card",
        "notice Acknowledged by <@U0ALICE>",
        "update IDENTIFIED",
        "notice Note from <@U0ALICE>",
        "update RESOLVED",
    ]
    # The one-liners went into the announcement's thread, which existed by then.
    announcement_ts = sent[0].response["ts"]
    assert [c.params.get("thread_ts") for c in sent if _label(c).startswith("notice")] == [
        announcement_ts,
        announcement_ts,
    ]
    assert [c.http_status for c in harness.double.calls_to("chat.postMessage")][:3] == [
        429,
        429,
        200,
    ]


@pytest.mark.parametrize("processes", [1, 2])
async def test_a_war_room_under_runs_of_429s_gets_its_set_up_then_its_updates_each_once(
    make_harness: HarnessFactory, processes: int
) -> None:
    """P1: the war room's set-up comes before the updates given meanwhile (the ack is given
    before the room exists), in each channel, each once; with two bot processes on one
    PostgreSQL the commands land on either."""
    clock = FakeClock(datetime.now(UTC))
    first = await make_harness(
        "postgres" if processes == 2 else "sqlite", clock=clock, policy=policy_without_paging()
    )
    bots = [first]
    if processes == 2:
        bots.append(
            await make_harness(
                "postgres",
                clock=clock,
                policy=policy_without_paging(),
                double=first.double,
                database_url=first.store.url,
            )
        )
    slack = first.double
    # Retry-After 0 with one process: the order is the outbox's, not the pacer's hold, and a
    # 1 s hold per 429 cost 5 s. With two, the 1 s hold: the claims of the two processes then
    # interleave such that a lane-order break shows every time (with 0, one run in three).
    retry_after = 0 if processes == 1 else 1
    # The announcement meets a run of 429s, so the ack is given before the room exists.
    slack.rate_limit("chat.postMessage", retry_after=retry_after, times=3)
    await reply(first, "declare P1 Checkout API returns 502")
    [incident] = await first.services.incidents.list()
    await reply(bots[-1], f"ack {incident.id}")
    await _deliver_through_faults(clock, *bots)
    room = (await first.services.incidents.get(incident.id)).channel_id or ""
    assert room

    # Another run, on the war room alone, while the updates come in on either process.
    slack.rate_limit("chat.postMessage", retry_after=retry_after, times=2, channel=room)
    for n, command in enumerate(
        (
            f"update {incident.id} identified Bad deploy",
            f"note {incident.id} Rolled back at 14:05",
            f"resolve {incident.id} Rolled back the deploy",
        )
    ):
        await reply(bots[n % len(bots)], command)
        await asyncio.gather(*(bot.settle() for bot in bots))
    await _deliver_through_faults(clock, *bots)

    assert [_label(c) for c in posts(first, room)] == [
        "card",
        "notice Acknowledged by <@U0ALICE>",
        "update IDENTIFIED",
        "notice Note from <@U0ALICE>",
        "update RESOLVED",
    ]
    assert [_label(c) for c in posts(first, ANNOUNCE)] == [
        "card",
        "update IDENTIFIED",  # P1: copies of the updates
        "update RESOLVED",
    ]
    assert slack.pins(room)[0]["ts"] == posts(first, room)[0].response["ts"]
    assert len(slack.calls_to("conversations.create")) == 1


async def test_a_bot_stopped_while_slack_takes_a_post_finishes_it_and_the_next_one_never_repeats_it(
    make_harness: HarnessFactory,
) -> None:
    # SIGTERM (bot.stop) while chat.postMessage was on its way: the delivery was cancelled
    # mid-call, after Slack had made the post, so it was never marked done and the bot that
    # took over posted the announcement a second time.
    first = await make_harness("sqlite")
    held = first.double.hold_reply("chat.postMessage")
    await first.command("declare P3 Disk full on db-2")
    [posted] = await first.double.wait_for("chat.postMessage")
    stopping = asyncio.create_task(first.bot.stop())
    dispatcher = first.services.dispatcher
    await until(
        lambda: stopping.done() or getattr(dispatcher, "stopping", False), "the bot stopping"
    )
    held.set()  # Slack answers now
    await stopping
    # The next bot, once any claim of the first has run out.
    later = FakeClock(datetime.now(UTC) + timedelta(minutes=10))
    second = await make_harness(
        database_url=first.bot.settings.DATABASE_URL, double=first.double, clock=later
    )
    await second.services.dispatcher.drain()
    announced = [
        c
        for c in first.double.calls
        if c.method == "chat.postMessage" and c.params["channel"] == posted.params["channel"]
    ]
    assert [c.params["text"] for c in announced] == [posted.params["text"]]
    assert await second.services.dispatcher.pending_count() == 0
