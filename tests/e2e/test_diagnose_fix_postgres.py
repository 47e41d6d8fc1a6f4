"""A suggested fix acts on exactly what its finding flagged (issue 15, item 1), end to end on
a real PostgreSQL through the Slack double: thresholds of one second flag real sessions idle in
transaction and a real long query; the suggestion buttons carry that threshold (not one
minute) and the finding's pids; the dry run lists the same pids; approval ends them and
nothing else. A superuser's session is named by the finding, says why no fix touches it, and
is not in any button."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from typing import Any

import psycopg
import pytest

from tests.e2e.conftest import HarnessFactory
from tests.harness import BotHarness
from tests.remediation_helpers import (
    APPROVER,
    REQUESTER,
    SECOND,
    click,
    finish,
    press_fix,
    remediation_policy,
    request_id,
    request_messages,
)
from tests.waiting import poll_sql

pytestmark = pytest.mark.postgres

SERVICES = {
    "shop": {
        "postgres": {"dsn_env": "SHOP_DB_URL", "timeout": 10},
        "thresholds": {"idle_in_transaction_s": 1, "long_query_s": 1},
    }
}


def _alive(dsn: str) -> set[int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {row[0] for row in conn.execute("SELECT pid FROM pg_stat_activity").fetchall()}


def _summary(harness: BotHarness) -> dict[str, Any]:
    [summary] = [
        c.response["message"] | {"channel": c.response["channel"]}
        for c in harness.double.calls_to("chat.postMessage")
        if c.ok
        and str(c.params.get("text", "")).startswith("Diagnosis of")
        and not c.params.get("thread_ts")
    ]
    return summary


def _buttons(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The suggestion buttons by action."""
    return {
        json.loads(e["value"])["a"]: e
        for b in summary["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    }


def _preview_pids(message: dict[str, Any]) -> set[int]:
    """The pids the dry run says it would terminate."""
    text = str(message["blocks"])
    found = re.search(r"for more than [^:]+: pids ([\d, ]+)", text)
    assert found, text
    return {int(pid) for pid in found.group(1).split(", ")}


@pytest.fixture
async def shop(
    make_harness: HarnessFactory, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> BotHarness:
    monkeypatch.setenv("SHOP_DB_URL", postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, state text)")
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'orders'").fetchone():
            conn.execute("CREATE ROLE orders LOGIN")
        conn.execute("GRANT ALL ON orders TO orders")
    return await make_harness(
        "postgres", database_url=postgres_url, policy=remediation_policy(SERVICES)
    )


async def test_the_fix_ends_the_sessions_the_finding_named_and_no_others(
    shop: BotHarness, postgres_url: str
) -> None:
    leaky = [
        psycopg.connect(postgres_url, application_name="orders-api", user="orders")
        for _ in range(3)
    ]
    admin = psycopg.connect(postgres_url, application_name="dba-console")  # a superuser
    late = psycopg.connect(postgres_url, application_name="orders-api", user="orders")
    sleeper = psycopg.connect(
        postgres_url, autocommit=True, application_name="report-job", user="orders"
    )
    running = asyncio.create_task(asyncio.to_thread(sleeper.execute, "SELECT pg_sleep(60)"))
    try:
        for conn in [*leaky, admin]:
            conn.execute("SELECT 1")  # opens a transaction, then idles in it
        leaky_pids = {c.info.backend_pid for c in leaky}
        admin_pid, sleeper_pid = admin.info.backend_pid, sleeper.info.backend_pid
        await asyncio.to_thread(
            poll_sql,
            postgres_url,
            "SELECT 1 FROM pg_stat_activity WHERE state = 'idle in transaction'"
            " AND now() - state_change > interval '1.2 s' HAVING count(*) = 4",
        )
        await asyncio.to_thread(
            poll_sql,
            postgres_url,
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'active'"
            " AND now() - query_start > interval '1.2 s'",
            (sleeper_pid,),
        )

        response = await shop.command("shop", command="/diagnose", user_id=REQUESTER)
        assert response.status == 200
        [started] = await shop.replies()  # said once the checks are known to run
        assert started["text"].startswith("Diagnosing `shop`")
        await shop.double.wait_for("chat.postMessage", 2)
        summary = _summary(shop)
        text = str(summary["blocks"])
        # The finding names the superuser's session and says why no fix ends it.
        assert f"pids {admin_pid}: superuser sessions, and the catalog" in text
        buttons = _buttons(summary)
        idle_button = buttons["postgres.terminate_idle_in_transaction"]
        long_button = buttons["postgres.terminate_long_queries"]
        # The threshold that flagged them (1 s), not a minute; the finding's pids.
        assert idle_button["text"]["text"] == "End 3 sessions idle in transaction > 1 s"
        assert long_button["text"]["text"] == "Terminate 1 query running over 1 s"
        idle_params = json.loads(idle_button["value"])["p"]
        assert idle_params["older_than_s"] == 1 and set(idle_params["pids"]) == leaky_pids
        assert json.loads(long_button["value"])["p"]["pids"] == [sleeper_pid]
        evidence = str(
            [
                c.params.get("blocks")
                for c in shop.double.calls_to("chat.postMessage")
                if c.ok and c.params.get("thread_ts") == summary["ts"]
            ]
        )
        for pid in [*leaky_pids, admin_pid, sleeper_pid]:
            assert f"pid {pid} " in evidence  # each one named by a finding

        # A session that starts idling after the diagnosis is not the finding's: never listed.
        late.execute("SELECT 1")
        await asyncio.to_thread(
            poll_sql,
            postgres_url,
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND now() - state_change > '1.2 s'",
            (late.info.backend_pid,),
        )
        message = await press_fix(shop, summary, idle_button)
        assert _preview_pids(message) == leaky_pids  # the dry run names the same pids
        assert "terminate 3 sessions idle in transaction for more than 1 s" in str(
            message["blocks"]
        )
        assert leaky_pids <= _alive(postgres_url)  # the dry run changed nothing
        await click(shop, message, user=APPROVER)
        await finish(shop, request_id(message))
        alive = _alive(postgres_url)
        assert not leaky_pids & alive  # the approved action ended exactly those
        assert admin_pid in alive and late.info.backend_pid in alive

        # A forged button naming the superuser's pid only narrows: nothing is requested.
        forged = {
            **idle_button,
            "value": json.dumps(
                {
                    "s": "shop",
                    "a": "postgres.terminate_idle_in_transaction",
                    "p": {"older_than_s": 1, "pids": [admin_pid]},
                }
            ),
        }
        before = len(request_messages(shop))
        response = await shop.click(
            forged["action_id"],
            value=forged["value"],
            message=summary,
            channel_id=summary["channel"],
            message_ts=summary["ts"],
            user_id=REQUESTER,
        )
        assert response.status == 200
        [answer] = await shop.replies()
        assert f"left alone: {admin_pid} (superuser)" in answer["text"], answer
        await shop.settle()
        assert len(request_messages(shop)) == before and admin_pid in _alive(postgres_url)

        long_request = await press_fix(shop, summary, long_button)
        assert _preview_pids(long_request) == {sleeper_pid}
        await click(shop, long_request, user=APPROVER)  # high risk: two approvers
        await click(shop, long_request, user=SECOND)
        await finish(shop, request_id(long_request))
        assert sleeper_pid not in _alive(postgres_url)
    finally:
        with contextlib.suppress(psycopg.Error):
            with psycopg.connect(postgres_url, autocommit=True) as conn:
                conn.execute("SELECT pg_cancel_backend(%s)", (sleeper.info.backend_pid,))
        with contextlib.suppress(psycopg.Error):
            await running
        for conn in [*leaky, admin, late, sleeper]:
            conn.close()


async def test_terminate_blocking_backend_ends_the_session_holding_the_lock(
    shop: BotHarness, postgres_url: str
) -> None:
    # The button read "Terminate blocking backend N" and "pg_terminate_backend(N)", but it
    # requested only a cancel of N's query: a blocker idle in its transaction (the usual one)
    # has none, so it kept its lock, and the request said Succeeded.
    holder = psycopg.connect(postgres_url, application_name="billing-worker", user="orders")
    waiter = psycopg.connect(
        postgres_url, autocommit=True, application_name="checkout-api", user="orders"
    )
    try:
        holder.execute("INSERT INTO orders VALUES (1, 'new')")
        holder.commit()
        holder.execute("UPDATE orders SET state = 'paid' WHERE id = 1")  # lock held, txn open
        holder_pid, waiter_pid = holder.info.backend_pid, waiter.info.backend_pid
        blocked = asyncio.create_task(
            asyncio.to_thread(waiter.execute, "UPDATE orders SET state = 'shipped' WHERE id = 1")
        )
        await asyncio.to_thread(
            poll_sql,
            postgres_url,
            "SELECT 1 WHERE %s = ANY(pg_blocking_pids(%s))",
            (holder_pid, waiter_pid),
        )
        await shop.command("shop", command="/diagnose", user_id=REQUESTER)
        await shop.replies()
        await shop.double.wait_for("chat.postMessage", 2)
        summary = _summary(shop)
        button = _buttons(summary)["postgres.terminate_backend"]
        assert button["text"]["text"] == f"Terminate blocking backend {holder_pid}"
        message = await press_fix(shop, summary, button)
        assert f"then terminate, backend {holder_pid}" in str(message["blocks"])
        await click(shop, message, user=APPROVER)
        await finish(shop, request_id(message))
        await blocked  # the waiter got its lock: the blocker is gone
    finally:
        holder.close()
        waiter.close()
    assert holder_pid not in _alive(postgres_url)
