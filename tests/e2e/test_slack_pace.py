"""Slack's pace kept: a burst of declarations draws no 429, and an outage loses nothing.

The double enforces Slack's documented limits (one message a second per channel, the method
tiers), ten times faster than Slack's clock, and the bot paces itself at that same scale.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter

from bot.console.workspace import RecordedCall
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import ANNOUNCE, posts
from tests.harness import BotHarness
from tests.waiting import until

SCALE = 10.0  # Slack's clock, ten times faster: 50 announcements in about 5 s
_ID = re.compile(r"INC-\d{8}-\d{3,}")


async def _declare_all(harness: BotHarness, titles: list[str], severity: str) -> list[str]:
    answers = await asyncio.gather(
        *(harness.command(f"declare {severity} {title}", user_id="U0ALICE") for title in titles)
    )
    assert all(a.status == 200 for a in answers)
    replies = await harness.replies(len(titles), timeout=30)
    assert all("Declared" in r["text"] for r in replies), replies
    return sorted(i.id for i in await harness.services.incidents.list(open_only=False))


def _announced(harness: BotHarness) -> list[str]:
    """The incidents whose cards landed in the announcement channel, in Slack's order (a card
    is edited in place after a page, so it is known by its buttons, not its text)."""
    return [
        _ID.search(str(m.get("text", ""))).group(0)  # type: ignore[union-attr]
        for m in harness.double.messages(ANNOUNCE)
        if "incident_actions" in str(m.get("blocks")) and _ID.search(str(m.get("text", "")))
    ]


async def test_a_burst_of_50_declarations_draws_no_429(make_harness: HarnessFactory) -> None:
    harness = await make_harness("sqlite", pace_scale=SCALE)
    ids = await _declare_all(harness, [f"Checkout burst {n}" for n in range(50)], "P3")
    assert len(ids) == 50

    async def all_announced() -> bool:
        return len(_announced(harness)) >= 50

    await until(all_announced, timeout=60)
    await harness.settle()
    assert harness.double.rate_limited == []
    # Each once, in the order they were declared.
    assert _announced(harness) == ids


async def test_an_outage_of_429s_and_500s_loses_nothing_and_keeps_order(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness("sqlite", pace_scale=SCALE)
    # Slack answers every call 429 (Retry-After) or 500 in turn for 20 of its seconds (2 s:
    # the declarations' first posts meet it; it was 40, waited out whole).
    harness.double.outage(20 / SCALE)
    ids = await _declare_all(harness, [f"Payments outage {n}" for n in range(8)], "P3")
    for incident_id in ids:
        response = await harness.command(
            f"update {incident_id} identified Found it for {incident_id}", user_id="U0ALICE"
        )
        assert response.status == 200
    await harness.replies(len(ids), timeout=30)

    def posts_of(incident_id: str) -> list[RecordedCall]:
        """Incident Update posts of one incident that Slack accepted, in Slack's order."""
        return [
            call
            for call in posts(harness, ANNOUNCE)
            if incident_id in str(call.params.get("text", ""))
            and str(call.params.get("text", "")).startswith("Incident Update:")
        ]

    async def all_delivered() -> bool:
        return all(len(posts_of(i)) >= 2 for i in ids)

    await until(all_delivered, timeout=90)
    await harness.settle()
    assert harness.double.rate_limited, "the outage answered nothing with 429"
    assert any(c.http_status == 500 for c in harness.double.calls)
    accepted = [
        (c.response.get("channel"), json.dumps(c.params, sort_keys=True))
        for c in harness.double.calls_to("chat.postMessage")
        if c.ok
    ]
    assert [post for post, n in Counter(accepted).items() if n > 1] == [], "posted twice"
    for incident_id in ids:
        incident = await harness.services.incidents.get(incident_id)
        # Each once, in the order written: the card (showing the state when it went out),
        # then the update.
        announcement, update = posts_of(incident_id)
        assert announcement.response["ts"] == incident.announce_ts
        assert "Found it" in json.dumps(update.params["blocks"])
