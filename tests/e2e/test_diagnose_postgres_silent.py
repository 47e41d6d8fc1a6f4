"""`/diagnose` of a PostgreSQL that takes the connection and the first query, then never
answers: the check is CRIT at its own limit, and the bot gives the connection up at once.
psycopg, cancelled mid-query, opened one more connection to the silent server for a cancel
request and would wait for it (5 s), then for the query (5 s more); here the statement's own
limit, a moment later, cut that short, but a hung server is not one to send more to."""

from __future__ import annotations

import asyncio
import json

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import policy_with
from tests.faulty_tcp import FaultyTcp
from tests.waiting import poll_sql

pytestmark = pytest.mark.postgres

TIMEOUT_S = 1  # the catalog entry's; the check and each statement get a second more


async def test_a_database_that_never_answers_is_crit_and_its_connection_given_up(
    make_harness: HarnessFactory, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = int(conninfo_to_dict(postgres_url)["port"] or 5432)
    # The diagnosis's first statement reaches the server; nothing comes back after it.
    with FaultyTcp(port, after=b"pg_database_size", fault="mute") as proxy:
        dsn = make_conninfo(**(conninfo_to_dict(postgres_url) | {"port": proxy.port}))
        monkeypatch.setenv("SHOP_DB_URL", dsn)
        services = {"shop": {"postgres": {"dsn_env": "SHOP_DB_URL", "timeout": TIMEOUT_S}}}
        harness = await make_harness("sqlite", policy=policy_with(services=services))
        await harness.command("shop", command="/diagnose", channel_id="C0GENERAL")
        [started] = await harness.replies()
        assert started["text"].startswith("Diagnosing `shop`"), started
        await harness.double.wait_for("chat.postMessage", 1)
        [summary] = [
            c.params
            for c in harness.double.calls_to("chat.postMessage")
            if str(c.params.get("text", "")).startswith("Diagnosis of")
            and not c.params.get("thread_ts")
        ]
        assert proxy.tripped
        # The bot's one connection: no second one carrying a cancel request.
        assert proxy.accepted == 1, "a cancel request was sent"
        # Nothing the bot started stays on the server (the proxy still up): its session
        # ended with the connection the bot closed.
        await asyncio.to_thread(
            poll_sql,
            postgres_url,
            "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity"
            " WHERE application_name = 'chatops-bot diagnose')",
        )
    assert str(summary["text"]).startswith("Diagnosis of shop: CRIT"), summary
    shown = json.dumps(summary["blocks"], ensure_ascii=False)
    assert f"no answer within {TIMEOUT_S + 1:g} s (timed out)" in shown, shown
