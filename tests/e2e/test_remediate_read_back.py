"""A PostgreSQL or Redis change that was made, then could not be read back: the server ended
the bot's session, or stopped answering, right after the change went through. The request
said "Failed" (or "Outcome unknown", after the whole remediation timeout) for sessions that
were terminated and a policy that was set: an invitation to run it again. It is reported as
made, asking to check it. The failures are real (tests/faulty_tcp.py orders them). And a
target silent since the preview, reached by no change at all, is "nothing changed" (Failed),
not "Outcome unknown"."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
import redis
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bot.remediation.executors import postgres as postgres_executor
from tests.e2e.conftest import HarnessFactory
from tests.faulty_tcp import Fault, FaultyTcp
from tests.harness import BotHarness
from tests.remediation_helpers import (
    APPROVER,
    audit_actions,
    click,
    final_update,
    finish,
    remediation_policy,
    request,
    request_id,
    thread_replies,
)
from tests.servers import RedisServer
from tests.waiting import poll_sql

# The catalog entry's timeout bounds each statement or command; the whole run gets longer.
TIMEOUT_S = 1
REMEDIATION = {"expire_after": "15m", "timeout": 10}

SHORT_WAIT_S = 1.0  # how long a terminate or cancel is waited for here


def _policy(services: dict[str, Any]) -> Any:
    policy = remediation_policy(services)
    return policy.model_copy(update={"remediation": policy.remediation.model_validate(REMEDIATION)})


def _through(proxy: FaultyTcp, dsn: str) -> str:
    return make_conninfo(**(conninfo_to_dict(dsn) | {"host": "127.0.0.1", "port": proxy.port}))


async def _approve_and_finish(harness: BotHarness, text: str) -> dict[str, Any]:
    answer, message = await request(harness, text)
    assert message is not None, answer
    await click(harness, message, user=APPROVER)
    await finish(harness, request_id(message))
    return message


def _reported_as_made(harness: BotHarness, message: dict[str, Any], done: str) -> None:
    [outcome] = thread_replies(harness, message)
    assert done in outcome and "could not be read back: check" in outcome, outcome
    assert "Succeeded" in str(final_update(harness, message)["blocks"])


# PostgreSQL ---------------------------------------------------------------------------------


def _end_the_bots_session(dsn: str) -> Callable[[], None]:
    """The server ends the remediation's session (as an administrator would) and it is gone."""

    def end() -> None:
        where = "application_name = 'chatops-bot remediate'"
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {where}")
            while admin.execute(f"SELECT 1 FROM pg_stat_activity WHERE {where}").fetchone():
                time.sleep(0.02)

    return end


async def _terminate_idle_in_transaction(
    make_harness: HarnessFactory, postgres_url: str, monkeypatch: pytest.MonkeyPatch, fault: Fault
) -> None:
    port = int(conninfo_to_dict(postgres_url)["port"] or 5432)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'orders'").fetchone():
            conn.execute("CREATE ROLE orders LOGIN")
    sessions = [
        psycopg.connect(postgres_url, application_name="orders-api", user="orders")
        for _ in range(2)
    ]
    with FaultyTcp(port, after=b"pg_terminate_backend", fault=fault) as proxy:
        monkeypatch.setenv("SHOP_DB_URL", _through(proxy, postgres_url))
        services = {"shop": {"postgres": {"dsn_env": "SHOP_DB_URL", "timeout": TIMEOUT_S}}}
        harness = await make_harness("sqlite", policy=_policy(services))
        try:
            for session in sessions:
                session.execute("SELECT 1")  # opens a transaction, then idles in it
            pids = sorted(s.info.backend_pid for s in sessions)
            await asyncio.to_thread(
                poll_sql,
                postgres_url,
                "SELECT 1 FROM pg_stat_activity WHERE application_name = 'orders-api'"
                " AND state = 'idle in transaction' AND now() - state_change > '1.2 s'"
                " HAVING count(*) = 2",
            )
            message = await _approve_and_finish(
                harness, "postgres.terminate_idle_in_transaction shop older_than=1"
            )
        finally:
            for session in sessions:
                session.close()
        assert proxy.tripped
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        alive = conn.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,))
        assert alive.fetchall() == []  # the change was made
    _reported_as_made(harness, message, f"terminated pids {pids[0]}, {pids[1]}")
    assert ("remediation.outcome", "chatops-bot", "succeeded") in await audit_actions(harness)
    [outcome] = thread_replies(harness, message)
    return proxy, outcome


@pytest.mark.postgres
async def test_sessions_terminated_then_the_server_ends_the_bots_session(
    make_harness: HarnessFactory, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _terminate_idle_in_transaction(
        make_harness, postgres_url, monkeypatch, _end_the_bots_session(postgres_url)
    )


@pytest.mark.postgres
async def test_sessions_terminated_then_no_answer_to_the_read_back(
    make_harness: HarnessFactory, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, outcome = await _terminate_idle_in_transaction(
        make_harness, postgres_url, monkeypatch, "hold"
    )
    # At its limit the bot gave the connection up: psycopg's cancel request (a connection of
    # its own) and its 5 s wait for it, then 5 s more for the query, held the answer back.
    assert f"no answer after {TIMEOUT_S + 1:g} s, so the bot closed that connection" in outcome
    assert proxy.accepted == 2, "a cancel request was sent"  # the preview's, the change's


@pytest.mark.postgres
async def test_a_session_still_connected_after_its_terminate_is_reported_sent_not_failed(
    make_harness: HarnessFactory, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A backend slow to end (stuck in I/O on a loaded server; here stopped with SIGSTOP, so
    # it takes the signal only when it runs again) was still listed 2 s after its
    # pg_terminate_backend: the request said Failed, an invitation to run it again.
    monkeypatch.setattr(postgres_executor, "GONE_WAIT_S", SHORT_WAIT_S)  # not 5 s a test
    monkeypatch.setenv("SHOP_DB_URL", postgres_url)
    services = {"shop": {"postgres": {"dsn_env": "SHOP_DB_URL", "timeout": TIMEOUT_S}}}
    harness = await make_harness("sqlite", policy=_policy(services))
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'orders'").fetchone():
            conn.execute("CREATE ROLE orders LOGIN")
    stuck = psycopg.connect(postgres_url, application_name="orders-api", user="orders")
    stuck.execute("SELECT 1")  # opens a transaction, then idles in it
    pid = stuck.info.backend_pid
    gone = "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s)"
    try:
        await asyncio.to_thread(
            poll_sql,
            postgres_url,
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'idle in transaction'"
            " AND now() - state_change > '1.2 s'",
            (pid,),
        )
        os.kill(pid, signal.SIGSTOP)  # the server's own process (tests/servers.py)
        try:
            message = await _approve_and_finish(
                harness, "postgres.terminate_idle_in_transaction shop older_than=1"
            )
        finally:
            os.kill(pid, signal.SIGCONT)
        await asyncio.to_thread(poll_sql, postgres_url, gone, (pid,))  # it ends once it runs
    finally:
        stuck.close()
    [outcome] = thread_replies(harness, message)
    sent = f"terminate sent to pids {pid}; pid {pid} still connected after {SHORT_WAIT_S:g} s"
    assert f"{sent}: check it" in outcome, outcome
    assert f"still connected: pids {pid}" in outcome
    blocks = str(final_update(harness, message)["blocks"])
    assert "Succeeded" in blocks and sent in blocks and "Failed" not in blocks
    assert ("remediation.outcome", "chatops-bot", "succeeded") in await audit_actions(harness)


@pytest.mark.postgres
async def test_a_query_still_running_after_its_cancel_is_reported_sent_not_cancelled(
    make_harness: HarnessFactory, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cancel is taken at the query's next check for interrupts: one still running after
    # the wait was reported "cancelled", as if it had stopped.
    monkeypatch.setattr(postgres_executor, "GONE_WAIT_S", SHORT_WAIT_S)  # not 5 s a test
    monkeypatch.setenv("SHOP_DB_URL", postgres_url)
    services = {"shop": {"postgres": {"dsn_env": "SHOP_DB_URL", "timeout": TIMEOUT_S}}}
    harness = await make_harness("sqlite", policy=_policy(services))
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'orders'").fetchone():
            conn.execute("CREATE ROLE orders LOGIN")
    busy = psycopg.connect(postgres_url, autocommit=True, application_name="reports", user="orders")
    pid = busy.info.backend_pid
    running = asyncio.create_task(asyncio.to_thread(busy.execute, "SELECT pg_sleep(60)"))
    try:
        await asyncio.to_thread(
            poll_sql,
            postgres_url,
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'active'",
            (pid,),
        )
        os.kill(pid, signal.SIGSTOP)  # it takes the cancel only once it runs again
        try:
            message = await _approve_and_finish(harness, f"postgres.terminate_backend shop {pid}")
        finally:
            os.kill(pid, signal.SIGCONT)
        with pytest.raises(psycopg.errors.QueryCanceled):  # and then it lands
            await running
    finally:
        busy.close()
    [outcome] = thread_replies(harness, message)
    sent = f"cancel sent to the query of backend {pid}; still running after {SHORT_WAIT_S:g} s"
    assert f"{sent}: check it" in outcome, outcome
    blocks = str(final_update(harness, message)["blocks"])
    assert "Succeeded" in blocks and sent in blocks


# Redis --------------------------------------------------------------------------------------


def _kill_the_bots_connection(url: str) -> Callable[[], None]:
    """The server closes the bot's connection (CLIENT KILL, as an operator would)."""

    def kill() -> None:
        with redis.Redis.from_url(url) as admin:
            for client in admin.client_list():
                if client["name"] == "chatops-bot":
                    admin.client_kill_filter(_id=client["id"])

    return kill


async def _set_policy(
    make_harness: HarnessFactory,
    redis_server: RedisServer,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    fault: Fault,
) -> None:
    admin = redis.Redis.from_url(redis_url, decode_responses=True)
    admin.config_set("maxmemory-policy", "noeviction")
    try:
        with FaultyTcp(redis_server.port, after=b"$3\r\nSET\r\n", fault=fault) as proxy:
            monkeypatch.setenv(
                "CACHE_URL", redis_url.replace(f":{redis_server.port}/", f":{proxy.port}/")
            )
            services = {"cache": {"redis": {"url_env": "CACHE_URL", "timeout": TIMEOUT_S}}}
            harness = await make_harness("sqlite", policy=_policy(services))
            message = await _approve_and_finish(
                harness, "redis.set_maxmemory_policy cache allkeys-lru"
            )
            assert proxy.tripped
        assert admin.config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lru"
        _reported_as_made(harness, message, "set maxmemory-policy noeviction -&gt; allkeys-lru")
    finally:
        admin.config_set("maxmemory-policy", "noeviction")
        admin.close()


@pytest.mark.redis
async def test_a_policy_set_then_the_server_closes_the_bots_connection(
    make_harness: HarnessFactory,
    redis_server: RedisServer,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _set_policy(
        make_harness, redis_server, redis_url, monkeypatch, _kill_the_bots_connection(redis_url)
    )


@pytest.mark.redis
async def test_a_policy_set_then_no_answer_to_the_read_back(
    make_harness: HarnessFactory,
    redis_server: RedisServer,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _set_policy(make_harness, redis_server, redis_url, monkeypatch, "hold")


# Nothing sent: the target stopped answering between the preview and the approval ----------


@pytest.mark.postgres
async def test_a_database_silent_since_the_preview_is_nothing_changed_not_unknown(
    make_harness: HarnessFactory, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An overloaded database that no longer answers a connection: no statement was sent,
    # yet the request said "Outcome unknown: it may or may not have been made".
    monkeypatch.setenv("SHOP_DB_URL", postgres_url)
    services = {"shop": {"postgres": {"dsn_env": "SHOP_DB_URL", "timeout": TIMEOUT_S}}}
    harness = await make_harness("sqlite", policy=_policy(services))
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'orders'").fetchone():
            conn.execute("CREATE ROLE orders LOGIN")
    idle = psycopg.connect(
        postgres_url, autocommit=True, application_name="reporting", user="orders"
    )
    with idle, socket.create_server(("127.0.0.1", 0)) as silent:  # never accepts
        pid = idle.info.backend_pid
        answer, message = await request(
            harness, f"postgres.terminate_backend shop {pid} terminate=yes"
        )
        assert message is not None, answer
        silent_port = silent.getsockname()[1]
        dsn = make_conninfo(**(conninfo_to_dict(postgres_url) | {"port": silent_port}))
        monkeypatch.setenv("SHOP_DB_URL", dsn)
        await click(harness, message, user=APPROVER)
        await finish(harness, request_id(message))
        assert idle.execute("SELECT 1").fetchone() == (1,)  # untouched
    _nothing_changed(harness, message)


@pytest.mark.redis
async def test_a_redis_silent_since_the_preview_is_nothing_changed_not_unknown(
    make_harness: HarnessFactory, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = redis.Redis.from_url(redis_url, decode_responses=True)
    admin.config_set("maxmemory-policy", "noeviction")
    monkeypatch.setenv("CACHE_URL", redis_url)
    services = {"cache": {"redis": {"url_env": "CACHE_URL", "timeout": TIMEOUT_S}}}
    harness = await make_harness("sqlite", policy=_policy(services))
    try:
        with socket.create_server(("127.0.0.1", 0)) as silent:
            _, message = await request(harness, "redis.set_maxmemory_policy cache allkeys-lru")
            assert message is not None
            monkeypatch.setenv("CACHE_URL", f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
            await click(harness, message, user=APPROVER)
            await finish(harness, request_id(message))
        assert admin.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    finally:
        admin.close()
    _nothing_changed(harness, message)


def _nothing_changed(harness: BotHarness, message: dict[str, Any]) -> None:
    [outcome] = thread_replies(harness, message)
    assert "nothing changed" in outcome, outcome
    assert "no answer in time" in outcome and "(before any change was sent)" in outcome
    assert "Failed" in str(final_update(harness, message)["blocks"])
