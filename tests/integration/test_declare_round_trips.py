"""Issue 19: a declaration's transaction in as few round trips as it needs. Counted from
SQLite's statement trace (a count, not a time): every statement of ours is a statement on
PostgreSQL. The reminders a declaration plans go in one statement, the page due at once is
fired from what that statement returned, and nothing is read that a new incident cannot have.
On PostgreSQL, counted in libpq's protocol trace: the writes nobody reads the answer of go
with the next statement (Tx.execute_nowait), so they cost no round trip of their own.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

import pytest
from psycopg import pq

from bot.escalation import planner
from bot.escalation.planner import ReminderKind
from bot.incidents.schemas import DeclareIncident
from bot.models import Severity
from bot.reminders import ReminderStatus
from bot.reports import search
from tests.escalation_env import ALICE, Env, start_env, stop_env


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    env = await start_env(f"sqlite:///{tmp_path}/trace.db")
    yield env
    await stop_env(env)


def _transactions(trace: list[str]) -> list[list[str]]:
    """The statements we sent, BEGIN to COMMIT, by transaction (not SQLite's own: FTS5's,
    its pragmas)."""
    found: list[list[str]] = []
    for sql in trace:
        if sql.startswith(("--", "PRAGMA")) or "'main'." in sql:
            continue
        if sql.startswith("BEGIN"):
            found.append([])
        if found:
            found[-1].append(" ".join(sql.split()))
    return found


def _ours(trace: list[str]) -> list[str]:
    """The first transaction traced."""
    return _transactions(trace)[0]


def _declaring(trace: list[str]) -> list[str]:
    """A declaration's transaction: the one that writes the incident."""
    [declaring] = [
        tx for tx in _transactions(trace) if any(s.startswith("INSERT INTO incidents") for s in tx)
    ]
    return declaring


def _traced(env: Env) -> list[str]:
    trace: list[str] = []
    env.services.store._conn.set_trace_callback(trace.append)  # type: ignore[attr-defined]
    return trace


def _untrace(env: Env) -> None:
    env.services.store._conn.set_trace_callback(None)  # type: ignore[attr-defined]


async def test_a_declaration_plans_its_reminders_in_one_statement(env: Env) -> None:
    trace = _traced(env)
    incident = await env.services.incidents.declare(
        DeclareIncident(severity=Severity.P1, title="Checkout down"), ALICE
    )
    _untrace(env)
    statements = _declaring(trace)

    def named(start: str) -> list[str]:
        return [sql for sql in statements if sql.startswith(start)]

    assert len(named("INSERT INTO reminders")) == 1
    # The day's number is taken before, in a transaction of its own: its counter row is not
    # locked while the declaration runs, so declarations do not queue behind each other.
    assert named("INSERT INTO incident_counters") == []
    numbering = [tx for tx in _transactions(trace) if "incident_counters" in " ".join(tx)]
    assert [[sql.split()[0] for sql in tx] for tx in numbering] == [["BEGIN", "INSERT", "COMMIT"]]
    assert named("SELECT * FROM reminders") == []  # the page due at once: from RETURNING
    # Never read: the planning knows a new incident has none, and the page fired next reads
    # the state the planning holds for the commit; written once, the page's level included.
    assert named("SELECT * FROM escalations") == []
    assert len(named("INSERT INTO escalations")) == 1
    # The search document of a new incident: no postmortem to read, no document to delete.
    assert named("SELECT * FROM postmortems") == []
    assert named("DELETE FROM incident_search") == []
    # Nor its timeline: all of it was recorded in this transaction (bot.incidents.journal).
    assert named("SELECT * FROM timeline") == []
    assert len(named("INSERT INTO incident_search")) == 1
    # Its timeline lines (declared, paged) and outbox rows (announcement, war room, page,
    # page DM) with one statement each, written at the commit.
    assert len(named("INSERT INTO timeline")) == 1
    assert len(named("INSERT INTO outbox")) == 1
    # 31 before issue 19's cuts, 18 before the lines and rows were (SQLite runs the audit
    # write as two statements).
    assert len(statements) <= 14, "\n".join(statements)

    # And the plan is the same: level 1 paged in the transaction, the rest pending, in order.
    rows = await env.reminders(incident)
    assert [(r.kind, r.level, r.status) for r in rows] == [
        (ReminderKind.PAGE, 1, ReminderStatus.FIRED),
        *[(r.kind, r.level, ReminderStatus.PENDING) for r in rows[1:]],
    ]
    planned = planner.plan_declared(incident, env.services.policy).reminders
    by_id = sorted(rows, key=lambda r: r.id)
    assert [(r.kind, r.level, r.due_at) for r in by_id] == [
        (p.kind, p.level, p.due_at) for p in planned
    ]
    assert len(rows) >= 4


async def test_similar_incidents_of_a_held_incident_are_one_search(env: Env) -> None:
    incident = await env.declare("P2", "Checkout down")
    trace = _traced(env)
    await env.services.reports.similar_to(incident)
    _untrace(env)
    statements = _ours(trace)
    assert [sql.split()[0] for sql in statements] == ["BEGIN", "SELECT", "COMMIT"]
    assert "FROM incidents WHERE" not in statements[1]  # the incident is not read again


@pytest.mark.postgres
async def test_a_declaration_on_postgres_waits_only_for_the_answers_it_reads(
    postgres_url: str,
) -> None:
    env = await start_env(postgres_url)
    store: Any = env.services.store
    real_transaction = store.transaction
    traces: list[IO[str]] = []

    @asynccontextmanager
    async def traced() -> AsyncIterator[Any]:
        trace = tempfile.TemporaryFile("w+")
        traces.append(trace)
        async with real_transaction() as tx:
            pgconn = tx._conn.pgconn
            pgconn.trace(trace.fileno())
            pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
            yield tx
        pgconn.untrace()

    sent: list[list[str]] = []
    try:
        for n in range(6):  # psycopg prepares a statement on its fifth run: warm
            await env.declare("P2", f"Warm-up {n}")
        store.transaction = traced
        # The pool hands out several connections, each preparing a statement on its own fifth
        # run, and preparing a statement sent alone costs its connection one round trip more,
        # once: measure a declaration on a connection that prepared nothing in it (the steady
        # state), not one that happened to reach its fifth run now (1 run in 6 did).
        for n in range(10):
            traces.clear()
            await env.services.incidents.declare(
                DeclareIncident(severity=Severity.P2, title=f"Checkout down {n}"), ALICE
            )
            assert len(traces) == 1  # the declaration is one transaction
            traces[0].seek(0)
            sent = [line.split("\t") for line in traces[0].read().splitlines()]
            traces[0].close()
            if not any(
                line[0] == "F" and line[2] == "Parse" and '"_pg3_' in line[3] for line in sent
            ):
                break
    finally:
        store.transaction = real_transaction
        await stop_env(env)
    # The client waits for the server after each Sync (extended protocol) or Query.
    trips = sum(1 for line in sent if line[0] == "F" and line[2] in ("Sync", "Query"))
    # 18 before, then 13: the incident, its search document, its targets, the escalation
    # state (twice) each waited for an answer nobody reads. 5 now: its timeline lines and
    # outbox rows do not wait for their ids, its escalation state is held for the commit
    # (not read back), its search document is built from the lines it recorded.
    assert trips <= 5, trips


async def test_a_state_held_for_the_commit_is_what_the_transaction_reads(env: Env) -> None:
    incident = await env.declare("P2", "Checkout down")
    states = env.services.escalation.firing
    stored = await env.services.escalation.state(incident.id)
    assert stored is not None and stored.level == 1
    raised = replace(stored, level=2)
    async with env.services.store.transaction() as tx:
        states.hold_state(tx, raised, env.clock.now())
        assert await states.current_state(tx, incident.id) == raised  # what tx now says
        row = await tx.fetchone(
            "SELECT level FROM escalations WHERE incident_id = ?", (incident.id,)
        )
        assert row is not None and row["level"] == 1  # not written before the commit
    after = await env.services.escalation.state(incident.id)
    assert after is not None and after.level == 2


async def test_a_new_incidents_search_document_is_the_one_its_timeline_gives(env: Env) -> None:
    incident = await env.declare("P2", "Checkout down")
    store = env.services.store

    async def body() -> str:
        async with store.transaction() as tx:
            row = await tx.fetchone(
                "SELECT body FROM incident_search WHERE incident_id = ?", (incident.id,)
            )
        assert row is not None
        return str(row["body"])

    written = await body()  # from the lines the declaration recorded, nothing read back
    assert "Checkout down" in written  # the declarer's words: the declaration's line
    async with store.transaction() as tx:
        await search.reindex(tx, incident)  # from the stored timeline
    assert await body() == written
