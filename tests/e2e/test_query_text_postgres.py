"""Another session's SQL leaks nothing: real sessions on a real PostgreSQL hold a password
change, a bearer token and a customer's e-mail in their statements; `/diagnose` and a
`/remediate` preview (approved and run) show those statements with placeholders, and none of
the three reaches Slack, the bot's store (audit log, outbox, timeline) or the log. Verbatim
text only for a catalog entry that opts in, and even then without password or token."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import pytest

from tests.e2e.conftest import HarnessFactory
from tests.harness import BotHarness
from tests.remediation_helpers import APPROVER, click, finish, remediation_policy, request
from tests.waiting import poll_sql

pytestmark = pytest.mark.postgres

PASSWORD = "hunter2secret"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.tOkEnSiGnAtUrE"
EMAIL = "jane.customer@example.com"
SERVICES = {
    "shop": {
        "postgres": {"dsn_env": "SHOP_DB_URL", "timeout": 10},
        "thresholds": {"long_query_s": 1, "idle_in_transaction_s": 1},
    },
    "ledger": {  # the same database, its entry opting in to verbatim text
        "postgres": {"dsn_env": "SHOP_DB_URL", "timeout": 10, "show_query_text": "verbatim"},
        "thresholds": {"long_query_s": 1, "idle_in_transaction_s": 1},
    },
}


@dataclass
class Scene:
    holder_pid: int  # idle in transaction after ALTER ROLE ... PASSWORD, holding a row lock
    waiter_pid: int  # blocked on that lock, its UPDATE carrying a bearer token
    sleeper_pid: int  # a long query whose WHERE clause names a customer's e-mail


@contextmanager
def _sessions(dsn: str) -> Iterator[tuple[Scene, list[psycopg.Connection]]]:
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("CREATE TABLE orders (id int PRIMARY KEY, state text)")
        admin.execute("INSERT INTO orders VALUES (1, 'new')")
        # The application's own role (the bot leaves superuser sessions alone).
        if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = 'app'").fetchone():
            admin.execute("CREATE ROLE app LOGIN")
        admin.execute("GRANT ALL ON orders TO app")
    holder = psycopg.connect(dsn, application_name="ops-console", user="app")
    waiter = psycopg.connect(dsn, autocommit=True, application_name="api", user="app")
    sleeper = psycopg.connect(dsn, autocommit=True, application_name="crm", user="app")
    conns = [holder, waiter, sleeper]
    scene = Scene(holder.info.backend_pid, waiter.info.backend_pid, sleeper.info.backend_pid)
    try:
        holder.execute("UPDATE orders SET state = 'locked' WHERE id = 1")
        holder.execute(f"ALTER ROLE app PASSWORD '{PASSWORD}'")  # then idles, in the txn
        yield scene, conns
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            for pid in (scene.sleeper_pid, scene.waiter_pid, scene.holder_pid):
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        for conn in conns:
            conn.close()


async def _start(scene: Scene, conns: list[psycopg.Connection], dsn: str) -> list[asyncio.Task]:
    _, waiter, sleeper = conns

    def run(conn: psycopg.Connection, sql: str) -> None:
        try:
            conn.execute(sql)
        except psycopg.Error:
            pass  # ended by the remediation or the clean-up

    tasks = [
        asyncio.create_task(
            asyncio.to_thread(
                run,
                waiter,
                f"UPDATE orders SET state = 'Authorization: Bearer {TOKEN}' WHERE id = 1",
            )
        ),
        asyncio.create_task(
            asyncio.to_thread(run, sleeper, f"SELECT pg_sleep(60) WHERE '{EMAIL}' LIKE '%@%'")
        ),
    ]
    await asyncio.to_thread(
        poll_sql,
        dsn,
        "SELECT 1 WHERE %s = ANY(pg_blocking_pids(%s))",
        (scene.holder_pid, scene.waiter_pid),
    )
    await asyncio.to_thread(
        poll_sql,
        dsn,
        "SELECT 1 FROM pg_stat_activity WHERE pid IN (%s, %s) AND state <> 'idle'"
        " AND now() - coalesce(query_start, state_change) > interval '1.2 s' HAVING count(*) = 2",
        (scene.waiter_pid, scene.sleeper_pid),
    )
    return tasks


async def _everything_the_bot_said(harness: BotHarness, caplog: pytest.LogCaptureFixture) -> str:
    """Slack's calls and response_url posts, every table of the bot's store, every log line."""
    seen = json.dumps([c.params for c in harness.double.calls], default=str)
    seen += json.dumps([r.__dict__ for r in harness.double.responses], default=str)
    async with harness.store.transaction() as tx:
        tables = await tx.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
        for table in tables:
            rows = await tx.fetchall(f'SELECT * FROM "{table["name"]}"')
            seen += json.dumps([dict(row) for row in rows], default=str)
    for record in caplog.records:
        seen += record.getMessage() + (record.exc_text or "")
    return seen


async def _diagnose(harness: BotHarness, service: str) -> str:
    before = len(harness.double.calls_to("chat.postMessage"))
    response = await harness.command(service, command="/diagnose", channel_id="C0GENERAL")
    assert response.status == 200
    [started] = await harness.replies()  # said once the checks are known to run
    assert started["text"].startswith(f"Diagnosing `{service}`")
    await harness.double.wait_for("chat.postMessage", before + 2, timeout=30)
    await harness.settle()
    return json.dumps([c.params for c in harness.double.calls_to("chat.postMessage")[before:]])


async def test_other_sessions_sql_reaches_slack_store_and_log_only_with_placeholders(
    make_harness: HarnessFactory,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SHOP_DB_URL", postgres_url)
    caplog.set_level(logging.DEBUG)
    harness = await make_harness("sqlite", policy=remediation_policy(SERVICES))
    with _sessions(postgres_url) as (scene, conns):
        tasks = await _start(scene, conns, postgres_url)

        posted = await _diagnose(harness, "shop")
        # The statements are there, readable, their literals as placeholders.
        assert "ALTER ROLE app PASSWORD $1" in posted
        assert "UPDATE orders SET state = $1 WHERE id = $2" in posted
        assert "pg_sleep($1) WHERE $2 LIKE $3" in posted
        seen = await _everything_the_bot_said(harness, caplog)
        for secret in (PASSWORD, TOKEN, EMAIL):
            assert secret not in seen, secret

        # An entry that opts in shows the text itself, passwords and tokens still masked.
        verbatim = await _diagnose(harness, "ledger")
        assert f"SELECT pg_sleep(60) WHERE '{EMAIL}' LIKE" in verbatim
        assert "Authorization: Bearer ***" in verbatim
        assert "ALTER ROLE app PASSWORD '***'" in verbatim

        # The remediation's preview names the blocker's statement with placeholders; run it.
        answer, message = await request(
            harness, f"postgres.terminate_backend shop {scene.holder_pid} terminate=yes"
        )
        assert message is not None, answer
        assert "ALTER ROLE app PASSWORD $1" in str(message["blocks"])
        await click(harness, message, user=APPROVER)
        await finish(harness)
        seen = await _everything_the_bot_said(harness, caplog)
        for secret in (PASSWORD, TOKEN):
            assert secret not in seen, secret
        entries = [e.to_json() async for e in harness.services.audit.entries()]
        [dry_run] = [e for e in entries if e["action"] == "remediation.dry_run"]
        assert "ALTER ROLE app PASSWORD $1" in dry_run["args"]["preview"]
    for task in tasks:
        await task
