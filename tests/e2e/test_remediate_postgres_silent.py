"""A PostgreSQL that takes the change (pg_terminate_backend) and then never answers: the
request is closed at the bot's limit as outcome unknown, the bot's connection given up at once.
psycopg, cancelled mid-statement, opened one more connection for a cancel request and waited
5 s more for the statement before the requester heard anything."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.e2e.conftest import HarnessFactory
from tests.faulty_tcp import FaultyTcp
from tests.remediation_helpers import (
    APPROVER,
    click,
    final_update,
    finish,
    remediation_policy,
    request,
    request_id,
    thread_replies,
)
from tests.waiting import poll_sql

pytestmark = pytest.mark.postgres

TIMEOUT_S = 1  # the catalog entry's; each statement gets a second more


async def test_a_terminate_that_gets_no_answer_is_unknown_at_the_bots_limit(
    make_harness: HarnessFactory, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'orders'").fetchone():
            conn.execute("CREATE ROLE orders LOGIN")
    port = int(conninfo_to_dict(postgres_url)["port"] or 5432)
    idle = psycopg.connect(
        postgres_url, autocommit=True, application_name="reporting", user="orders"
    )
    pid = idle.info.backend_pid
    with idle, FaultyTcp(port, after=b"pg_terminate_backend", fault="mute") as proxy:
        dsn = make_conninfo(**(conninfo_to_dict(postgres_url) | {"port": proxy.port}))
        monkeypatch.setenv("SHOP_DB_URL", dsn)
        services = {"shop": {"postgres": {"dsn_env": "SHOP_DB_URL", "timeout": TIMEOUT_S}}}
        harness = await make_harness("sqlite", policy=remediation_policy(services))
        answer, message = await request(
            harness, f"postgres.terminate_backend shop {pid} terminate=yes"
        )
        assert message is not None, answer
        await click(harness, message, user=APPROVER)
        await finish(harness, request_id(message))
        assert proxy.tripped
        assert proxy.accepted == 2, "a cancel request was sent"  # the preview's, the change's
        # The server took the change; the bot's own session ended with its connection.
        await asyncio.to_thread(
            poll_sql,
            postgres_url,
            "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity"
            " WHERE pid = %s OR application_name = 'chatops-bot remediate')",
            (pid,),
        )
    [outcome] = thread_replies(harness, message)
    assert f"no answer after {TIMEOUT_S + 1:g} s, so the bot closed that connection" in outcome
    assert f"pid {pid} may or may not have been ended: check it" in outcome, outcome
    assert "Outcome unknown" in str(final_update(harness, message)["blocks"])
