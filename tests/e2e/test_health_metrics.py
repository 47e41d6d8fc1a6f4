"""The metrics the bot's own alerting rules read (deploy/prometheus/chatops-bot-rules.yml):
Slack's 429s counted by method, and `chatops_store_up` at 0 while the database hangs, the
scrape itself still answering in time."""

from __future__ import annotations

import aiohttp

from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import declare
from tests.servers import PostgresServer
from tests.waiting import until


def _base(app_url: str) -> str:
    return app_url.removesuffix("/slack/events")


async def _sample(base: str, name: str, labels: str = "") -> float:
    """One sample of GET /metrics (0 when absent)."""
    async with aiohttp.ClientSession() as session, session.get(base + "/metrics") as response:
        assert response.status == 200
        page = await response.text()
    prefix = f"{name}{{{labels}}} " if labels else f"{name} "
    for line in page.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_slacks_429s_are_counted_by_method(make_harness: HarnessFactory) -> None:
    harness = await make_harness("sqlite")
    base = _base(harness.app_url)
    name, labels = "chatops_slack_rate_limited_total", 'method="chat.postMessage"'
    before = await _sample(base, name, labels)
    harness.double.rate_limit("chat.postMessage", retry_after=0, times=1)
    await declare(harness, "declare P3 Search is slow")  # the announcement meets the 429

    assert len(harness.double.rate_limited) == 1
    assert await _sample(base, name, labels) - before == 1
    assert await _sample(base, name, 'method="conversations.create"') == 0


async def test_store_up_is_0_while_the_database_hangs_and_1_when_it_is_back(
    own_postgres: PostgresServer, make_harness: HarnessFactory
) -> None:
    harness = await make_harness(database_url=own_postgres.create_database("health"))
    base = _base(harness.app_url)
    assert await _sample(base, "chatops_store_up") == 1
    errors = await _sample(base, "chatops_store_errors_total")
    own_postgres.pause()
    try:
        # The scrape answers (bounded), saying the store is not there.
        assert await _sample(base, "chatops_store_up") == 0
        assert await _sample(base, "chatops_store_errors_total") > errors
    finally:
        own_postgres.resume()

    async def back() -> bool:
        return await _sample(base, "chatops_store_up") == 1

    await until(back, "chatops_store_up back at 1", timeout=30)
