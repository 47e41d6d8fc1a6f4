"""PostgreSQL checks against a real server: a real row lock, a real long query, real idle
transactions, pg_stat_statements present and absent, and the bot's own sessions left out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import psycopg
import psycopg.conninfo
import pytest

from bot.diagnostics.findings import Grade
from bot.store.postgres import APP_NAME
from bot.targets.postgres import is_bots_application
from tests.diagnostics_helpers import diagnose, finding
from tests.servers import PostgresServer
from tests.waiting import poll_sql

pytestmark = pytest.mark.postgres


async def _wait_for(dsn: str, sql: str) -> None:
    """Wait until `sql` returns a row: the positive signal that the scene is set."""
    await asyncio.to_thread(poll_sql, dsn, sql)


@pytest.fixture
def catalog(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("SHOP_DB_URL", postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, state text)")
        conn.execute("INSERT INTO orders VALUES (1, 'new'), (2, 'new')")
        # The application's own role: remediation leaves superuser sessions alone.
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'orders'").fetchone():
            conn.execute("CREATE ROLE orders LOGIN")
        conn.execute("GRANT ALL ON orders TO orders")
    return {
        "shop": {
            "postgres": {"dsn_env": "SHOP_DB_URL", "timeout": 10},
            "thresholds": {"long_query_s": 1, "idle_in_transaction_s": 1},
        }
    }


async def test_a_row_lock_names_the_blocking_pid(
    catalog: dict, postgres_url: str, tmp_path: Path
) -> None:
    holder = psycopg.connect(postgres_url, application_name="billing-worker", user="orders")
    waiter = psycopg.connect(postgres_url, autocommit=True, application_name="checkout-api")
    try:
        holder.execute("UPDATE orders SET state = 'paid' WHERE id = 1")  # lock held, txn open
        holder_pid = holder.info.backend_pid
        blocked = asyncio.create_task(
            asyncio.to_thread(waiter.execute, "UPDATE orders SET state = 'shipped' WHERE id = 1")
        )
        # Blocked for longer than long_query_s = 1: also a long query, and CRIT.
        await _wait_for(
            postgres_url,
            "SELECT 1 FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0"
            " AND now() - query_start > interval '1.2 s'",
        )
        report = await diagnose(tmp_path, catalog, "shop")
        holder.rollback()
        await blocked
    finally:
        holder.close()
        waiter.close()

    blocking = finding(report, "postgres.blocking")
    assert blocking.grade is Grade.CRIT  # waiting longer than long_query_s
    assert blocking.facts["blocking_pids"] == [holder_pid]
    assert f"waits on pid {holder_pid}" in blocking.summary
    evidence = "\n".join(blocking.evidence)
    assert "checkout-api" in evidence and "billing-worker" in evidence
    # Other sessions' statements with their literals as placeholders (bot/sqltext.py).
    assert "UPDATE orders SET state = $1 WHERE id = $2" in evidence
    assert "shipped" not in evidence and "paid" not in evidence
    long = finding(report, "postgres.long_queries")
    assert long.grade is Grade.WARN and "SET state = $1" in "\n".join(long.evidence)
    actions = [s.action for s in report.suggestions]
    assert actions[0] == "postgres.terminate_backend"
    assert report.suggestions[0].params == {"pid": holder_pid, "terminate": True}
    assert "postgres.blocking" in report.suggestions[0].because


async def test_a_long_query_and_idle_transactions(
    catalog: dict, postgres_url: str, tmp_path: Path
) -> None:
    sleeper = psycopg.connect(
        postgres_url, autocommit=True, application_name="report-job", user="orders"
    )
    # One application session, one superuser's: only the first is the fix's to end.
    idle = [
        psycopg.connect(postgres_url, application_name="leaky-0", user="orders"),
        psycopg.connect(postgres_url, application_name="leaky-1"),
    ]
    sleeper_pid, idle_pids = sleeper.info.backend_pid, [c.info.backend_pid for c in idle]
    try:
        running = asyncio.create_task(asyncio.to_thread(sleeper.execute, "SELECT pg_sleep(30)"))
        for conn in idle:
            conn.execute("SELECT id FROM orders")  # opens a transaction, then sits idle
        await _wait_for(
            postgres_url,
            "SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'"
            " AND now() - query_start > interval '1.2 s'",
        )
        await _wait_for(
            postgres_url,
            "SELECT 1 FROM pg_stat_activity WHERE state = 'idle in transaction'"
            " AND now() - state_change > interval '1.2 s' HAVING count(*) >= 2",
        )
        report = await diagnose(tmp_path, catalog, "shop")
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_cancel_backend(%s)", (sleeper_pid,))
        with contextlib.suppress(psycopg.Error):
            await running
        for conn in [sleeper, *idle]:
            conn.close()

    long = finding(report, "postgres.long_queries")
    assert long.grade is Grade.WARN
    assert long.facts["pids"] == [sleeper_pid]
    assert "pg_sleep($1)" in "\n".join(long.evidence) and "report-job" in "\n".join(long.evidence)
    idle_tx = finding(report, "postgres.idle_in_transaction")
    assert idle_tx.grade is Grade.WARN
    assert sorted(idle_tx.facts["pids"]) == sorted(idle_pids)
    connections = finding(report, "postgres.connections")
    assert connections.facts["by_state"]["idle in transaction"] == 2
    # The bot's own diagnosing session is labelled and left out of every list.
    everything = "\n".join(e for f in report.findings for e in f.evidence)
    assert "chatops-bot" not in everything
    # Each fix carries the finding's threshold in seconds and the pids it may end.
    fixes = {s.action: s for s in report.suggestions}
    assert fixes["postgres.terminate_long_queries"].params == {
        "older_than_s": 1,
        "pids": [sleeper_pid],
    }
    assert fixes["postgres.terminate_idle_in_transaction"].params == {
        "older_than_s": 1,
        "pids": [idle_pids[0]],
    }
    assert idle_tx.facts["left_alone"] == [[idle_pids[1], "superuser"]]
    assert f"left out of the fix (pids {idle_pids[1]}: superuser sessions" in idle_tx.summary


async def test_a_superusers_blocking_session_is_named_and_no_fix_offered(
    catalog: dict, postgres_url: str, tmp_path: Path
) -> None:
    holder = psycopg.connect(postgres_url, application_name="dba-console")  # a superuser
    waiter = psycopg.connect(
        postgres_url, autocommit=True, application_name="checkout-api", user="orders"
    )
    holder_pid = holder.info.backend_pid
    try:
        holder.execute("UPDATE orders SET state = 'paid' WHERE id = 2")
        blocked = asyncio.create_task(
            asyncio.to_thread(waiter.execute, "UPDATE orders SET state = 'shipped' WHERE id = 2")
        )
        await _wait_for(
            postgres_url,
            "SELECT 1 FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0",
        )
        report = await diagnose(tmp_path, catalog, "shop")
        holder.rollback()
        await blocked
    finally:
        holder.close()
        waiter.close()
    blocking = finding(report, "postgres.blocking")
    assert blocking.facts["blocking_pids"] == [holder_pid]
    assert "no fix offered" in blocking.summary and "terminate_superuser is off" in blocking.summary
    # The executor would refuse a superuser's backend: no button for it.
    assert "postgres.terminate_backend" not in [s.action for s in report.suggestions]


async def test_without_pg_stat_statements_it_is_a_note(catalog: dict, tmp_path: Path) -> None:
    report = await diagnose(tmp_path, catalog, "shop")
    statements = finding(report, "postgres.statements")
    assert statements.grade is Grade.OK
    assert "not installed" in statements.summary
    assert finding(report, "postgres.reachable").grade is Grade.OK
    assert report.grade is Grade.OK


@pytest.fixture(scope="module")
def statements_server() -> Iterator[PostgresServer]:
    # Debian ships pg_stat_statements in the postgresql-NN package itself (no contrib needed).
    server = PostgresServer(settings={"shared_preload_libraries": "pg_stat_statements"}).start()
    try:
        yield server
    finally:
        server.stop()


async def test_with_pg_stat_statements_the_slowest_are_listed(
    statements_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dsn = statements_server.create_database("stats")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        for _ in range(3):
            conn.execute("SELECT pg_sleep(0.05) AS slow_marker")
    monkeypatch.setenv("STATS_DB_URL", dsn)
    catalog = {"stats": {"postgres": {"dsn_env": "STATS_DB_URL"}}}
    report = await diagnose(tmp_path, catalog, "stats")
    statements = finding(report, "postgres.statements")
    assert statements.facts["available"] is True
    assert statements.facts["worst_mean_ms"] >= 50
    assert any("slow_marker" in line for line in statements.evidence)


async def test_an_unset_dsn_variable_is_crit_and_named(tmp_path: Path) -> None:
    catalog = {"shop": {"postgres": {"dsn_env": "NOT_SET_ANYWHERE_DSN"}}}
    report = await diagnose(tmp_path, catalog, "shop")
    assert report.grade is Grade.CRIT
    assert "NOT_SET_ANYWHERE_DSN is not set" in report.findings[0].summary


async def test_a_wrong_password_never_shows_the_password(
    postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dsn = f"postgresql://nobody:hunter2secret@127.0.0.1:{postgres_server.port}/nowhere"
    monkeypatch.setenv("BAD_DB_URL", dsn)
    report = await diagnose(tmp_path, {"bad": {"postgres": {"dsn_env": "BAD_DB_URL"}}}, "bad")
    assert report.grade is Grade.CRIT
    assert "hunter2secret" not in repr(report)


async def test_more_idle_transactions_than_listed_are_all_counted(
    catalog: dict, postgres_url: str, tmp_path: Path
) -> None:
    # 22 sessions idle in transaction (a pool leaking them at 3 a.m.): the finding said "20",
    # the number it lists, not the number there are.
    idle = [
        psycopg.connect(postgres_url, application_name="leaky", user="orders") for _ in range(22)
    ]
    try:
        for conn in idle:
            conn.execute("SELECT id FROM orders")  # opens a transaction, then sits idle
        await _wait_for(
            postgres_url,
            "SELECT 1 FROM pg_stat_activity WHERE state = 'idle in transaction'"
            " AND now() - state_change > interval '1.2 s' HAVING count(*) = 22",
        )
        report = await diagnose(tmp_path, catalog, "shop")
    finally:
        for conn in idle:
            conn.close()
    idle_tx = finding(report, "postgres.idle_in_transaction")
    assert idle_tx.summary.startswith("22 (the first 20 named) for longer than 1 s; oldest")
    assert len(idle_tx.facts["pids"]) == len(idle_tx.evidence) == 20
    [fix] = [s for s in report.suggestions if s.action == "postgres.terminate_idle_in_transaction"]
    assert fix.params["pids"] == idle_tx.facts["pids"]  # the fix ends what is named


async def test_sessions_the_bots_role_cannot_read_are_said_not_none(
    catalog: dict, postgres_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The DSN at hand at 3 a.m. is often an application's own role, without pg_read_all_stats:
    # other roles' sessions then read NULL state and type. The report said "Idle in
    # transaction: none" (OK) and counted no connection of theirs.
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = 'watcher'").fetchone():
            admin.execute("CREATE ROLE watcher LOGIN")
    monkeypatch.setenv("SHOP_DB_URL", psycopg.conninfo.make_conninfo(postgres_url, user="watcher"))
    leaky = psycopg.connect(postgres_url, application_name="leaky", user="orders")
    try:
        leaky.execute("SELECT id FROM orders")  # opens a transaction, then sits idle
        await _wait_for(
            postgres_url,
            "SELECT 1 FROM pg_stat_activity WHERE application_name = 'leaky'"
            " AND state = 'idle in transaction' AND now() - state_change > interval '1.2 s'",
        )
        report = await diagnose(tmp_path, catalog, "shop")
    finally:
        leaky.close()
    hidden = finding(report, "postgres.visibility")
    assert hidden.grade is Grade.WARN and hidden.facts["hidden"] >= 1
    assert "grant it pg_read_all_stats" in hidden.summary
    assert finding(report, "postgres.connections").facts["by_state"]["not readable"] >= 1
    idle_tx = finding(report, "postgres.idle_in_transaction")
    assert idle_tx.summary.startswith("none (") and "of other roles not readable" in idle_tx.summary


async def test_only_the_bots_own_session_names_are_left_out(
    catalog: dict, postgres_url: str, tmp_path: Path
) -> None:
    # Every session whose application_name merely started with "chatops-bot" was taken for
    # the bot's own: another app's "chatops-bot-exporter" idle in its transaction was left
    # out of the diagnosis, and no remediation would ever end it.
    named = {
        name: psycopg.connect(postgres_url, application_name=name, user="orders")
        for name in ("chatops-bot-exporter", "chatops-botany", "chatops-bot remediate")
    }
    pids = {name: conn.info.backend_pid for name, conn in named.items()}
    try:
        for conn in named.values():
            conn.execute("SELECT id FROM orders")  # opens a transaction, then sits idle
        await _wait_for(
            postgres_url,
            "SELECT 1 FROM pg_stat_activity WHERE state = 'idle in transaction'"
            " AND now() - state_change > interval '1.2 s' HAVING count(*) >= 3",
        )
        report = await diagnose(tmp_path, catalog, "shop")
    finally:
        for conn in named.values():
            conn.close()
    idle_tx = finding(report, "postgres.idle_in_transaction")
    others = [pids["chatops-bot-exporter"], pids["chatops-botany"]]
    assert sorted(idle_tx.facts["pids"]) == sorted(others)  # the bot's name left out
    fixes = {s.action: s for s in report.suggestions}
    assert sorted(fixes["postgres.terminate_idle_in_transaction"].params["pids"]) == sorted(others)


def test_the_stores_session_name_is_one_the_bot_leaves_alone() -> None:
    assert is_bots_application(APP_NAME) and is_bots_application("chatops-bot diagnose")
    assert not is_bots_application("chatops-bot-exporter")
