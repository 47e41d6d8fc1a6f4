"""Reminders fire in batches (bot.reminders.firing): a batch costs the same few statements
whatever its size, each reminder fires once however many engines race for it, a handler that
raises costs the rest of its batch nothing, and a reminder withdrawn after its claim is not
fired. On both stores."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.errors import StoreUnavailable
from bot.escalation import ReminderKind
from bot.escalation.delivery import PAGE_POST
from bot.incidents.changes import Change, Queued
from bot.models import Incident
from bot.reminders import FireResult, Firing, PlannedReminder, Reminder, ReminderStatus
from bot.reminders import storage as reminders
from bot.store.postgres_tx import PostgresTx
from bot.store.sqlite import SqliteTx
from tests.escalation_env import BOB, Env, policy_without_paging, start_env, stop_env


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/batches.db"
    return str(request.getfixturevalue("migrated_postgres_url"))


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[Env]:
    started = await start_env(database_url)
    yield started
    await stop_env(started)


class Statements:
    """Every statement the store is sent, BEGIN and COMMIT included: each is a round trip
    (to PostgreSQL, or to SQLite's worker thread)."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def reset(self) -> None:
        self.sent.clear()


@pytest.fixture
def statements(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Statements]:
    trace = Statements()
    for tx_class in (SqliteTx, PostgresTx):
        for method in ("execute", "fetchone", "fetchall"):
            monkeypatch.setattr(tx_class, method, _traced(getattr(tx_class, method), trace))
    store = env.services.store
    real_transaction = store.transaction

    @asynccontextmanager
    async def transaction() -> AsyncIterator[Any]:
        trace.sent.append("BEGIN")
        async with real_transaction() as tx:
            yield tx
        trace.sent.append("COMMIT")

    monkeypatch.setattr(store, "transaction", transaction)
    yield trace


def _traced(real: Callable[..., Any], trace: Statements) -> Callable[..., Any]:
    async def traced(self: Any, sql: str, params: Any = ()) -> Any:
        trace.sent.append(sql.split(" ", 2)[0] + " " + sql.split(" ", 2)[1])
        return await real(self, sql, params)

    return traced


async def _declare_many(env: Env, count: int) -> list[Incident]:
    return [await env.declare("P1", f"Service {n} down") for n in range(count)]


async def _due(env: Env, incidents: list[Incident]) -> list[int]:
    """The level-2 pages and acknowledgement breaches of `incidents` (due 30 minutes in)."""
    return [
        r.id
        for incident in incidents
        for r in await env.reminders(incident, ReminderStatus.PENDING)
        if r.kind in (ReminderKind.PAGE, ReminderKind.ACK_BREACH)
    ]


async def test_a_sweep_fires_a_batch_in_two_transactions(env: Env, statements: Statements) -> None:
    await _declare_many(env, 10)
    env.clock.advance(minutes=30)
    statements.reset()
    assert await env.services.reminders.fire_due() == 20
    # One claim and one firing transaction (before batches: two transactions and about 14
    # round trips for each firing).
    assert statements.sent.count("BEGIN") == 2, statements.sent
    assert len(statements.sent) <= 20, statements.sent  # at most one round trip a firing


async def test_jobs_due_together_cost_the_same_statements_whatever_their_number(
    env: Env, statements: Statements
) -> None:
    incidents = await _declare_many(env, 6)
    env.clock.advance(minutes=30)
    few, many = await _due(env, incidents[:1]), await _due(env, incidents[1:])
    assert (len(few), len(many)) == (2, 10)

    statements.reset()
    results = await asyncio.gather(*(env.services.reminders.fire(rid) for rid in few))
    assert set(results) == {FireResult.FIRED}
    two = list(statements.sent)
    statements.reset()
    results = await asyncio.gather(*(env.services.reminders.fire(rid) for rid in many))
    assert set(results) == {FireResult.FIRED}
    ten = list(statements.sent)

    assert ten == two  # one claim, one firing transaction, whatever the batch holds
    assert ten.count("BEGIN") == 2
    assert len(ten) <= 2 * len(many), ten  # at most two round trips a firing
    # Fired: asked again, they cost one claim transaction (its UPDATE, and a look-up of the
    # ids it did not claim, for the NOT_CLAIMED / MISSING answer).
    statements.reset()
    again = await asyncio.gather(*(env.services.reminders.fire(rid) for rid in many))
    assert set(again) == {FireResult.NOT_CLAIMED}
    assert statements.sent == ["BEGIN", "UPDATE reminders", "SELECT id", "COMMIT"]


async def test_racing_engines_fire_each_reminder_once(database_url: str) -> None:
    first = await start_env(database_url)
    second = await start_env(database_url, clock=first.clock)
    try:
        assert first.services.reminders.owner != second.services.reminders.owner
        incidents = await _declare_many(first, 8)
        first.clock.advance(minutes=30)
        due = await _due(first, incidents)
        assert len(due) == 16
        # Both hold a job for every reminder, and one also sweeps.
        results = await asyncio.gather(
            *(first.services.reminders.fire(rid) for rid in due),
            *(second.services.reminders.fire(rid) for rid in reversed(due)),
            second.services.reminders.fire_due(),
        )
        *jobs, swept = results
        assert isinstance(swept, int)
        assert sum(result is FireResult.FIRED for result in jobs) + swept == 16
        for incident in incidents:
            closed = await first.reminders(incident, ReminderStatus.FIRED)
            assert len([r for r in closed if r.level == 2]) == 1
            kinds = await first.timeline_kinds(incident)
            assert kinds.count("paged") == 2  # level 1 on declaring, level 2 now: once
            assert kinds.count("target_breached") == 1
        async with first.services.store.transaction() as tx:
            rows = await tx.fetchall("SELECT payload FROM outbox WHERE kind = ?", (PAGE_POST,))
        assert sorted(json.loads(row["payload"])["level"] for row in rows) == [1] * 8 + [2] * 8
        await asyncio.gather(first.deliver(), second.deliver())
        dms: dict[str, int] = {}
        for env in (first, second):  # each delivers what its dispatcher claimed
            for user, count in env.dms("level 2").items():
                dms[user] = dms.get(user, 0) + count
        assert dms and set(dms.values()) == {8}  # each page DMed once per person
    finally:
        await stop_env(second)
        await stop_env(first)


class _Tea:
    """Records a timeline line and an effect for each reminder; raises for subject "bad"."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    async def fire(self, change: Change, reminder: Reminder, incident: Incident | None) -> Firing:
        assert incident is not None
        self.calls.append(reminder.id)
        await change.record(
            incident.id,
            actor="U0BOT",
            kind="noted",
            text=f"tea {reminder.subject}",
            action="test.tea",
            args={"subject": reminder.subject},
            effects=[Queued("tea", {"subject": reminder.subject})],
        )
        if reminder.subject == "bad":
            raise RuntimeError("the kettle broke")
        if reminder.subject == "outage":
            raise StoreUnavailable("PostgreSQL is unavailable: the kettle tripped the fuse")
        return Firing(ReminderStatus.FIRED, "poured")


async def _tea_reminders(env: Env, incident: Incident, subjects: list[str]) -> list[int]:
    now = env.clock.now()
    async with env.services.store.transaction() as tx:
        return [
            await reminders.insert(
                tx, incident.id, 0, PlannedReminder("tea", now, subject=subject), now
            )
            for subject in subjects
        ]


async def _tea_lines(env: Env, incident: Incident) -> list[str]:
    events = await env.services.incidents.timeline(incident.id)
    return sorted(event.text for event in events if event.kind == "noted")


@pytest.mark.parametrize("path", ["sweep", "jobs"])
async def test_a_handler_failing_mid_batch_loses_none_of_the_others(
    database_url: str, path: str
) -> None:
    env = await start_env(database_url, policy=policy_without_paging())
    try:
        handler = _Tea()
        env.services.reminders.register(["tea"], handler)
        incident = await env.declare("P3", "Kettle")
        ids = await _tea_reminders(env, incident, ["one", "two", "bad", "three"])
        if path == "sweep":
            with pytest.raises(RuntimeError, match="the kettle broke"):
                await env.services.reminders.fire_due()
        else:
            results = await asyncio.gather(
                *(env.services.reminders.fire(rid) for rid in ids), return_exceptions=True
            )
            assert [type(r).__name__ for r in results] == [
                "FireResult",
                "FireResult",
                "RuntimeError",
                "FireResult",
            ]
        stored = {r.id: r for r in await env.reminders(incident)}
        assert [stored[rid].status for rid in ids] == [
            ReminderStatus.FIRED,
            ReminderStatus.FIRED,
            ReminderStatus.PENDING,  # handed back for the next sweep
            ReminderStatus.FIRED,
        ]
        fired_at = [stored[rid].fired_at for rid in ids]
        assert fired_at[2] is None and None not in fired_at[:2] + fired_at[3:]
        assert {stored[rid].outcome for rid in ids} == {"poured", ""}
        # What the failed one wrote was rolled back; the others' lines are there once.
        assert await _tea_lines(env, incident) == ["tea one", "tea three", "tea two"]
        async with env.services.store.transaction() as tx:
            rows = await tx.fetchall("SELECT payload FROM outbox WHERE kind = 'tea' ORDER BY id")
        assert [row["payload"] for row in rows] == [
            '{"subject": "one"}',
            '{"subject": "two"}',
            '{"subject": "three"}',
        ]
    finally:
        await stop_env(env)


async def test_a_reminder_withdrawn_between_claim_and_fire_is_not_fired(env: Env) -> None:
    acked, other = await _declare_many(env, 2)
    env.clock.advance(minutes=30)
    owner = env.services.reminders.owner
    async with env.services.store.transaction() as tx:
        claimed = await reminders.claim_due(tx, owner, env.clock.now(), 30, 100)
    assert len(claimed) == 4
    await env.services.incidents.acknowledge(acked.id, BOB)
    outcomes = await env.services.reminders.firing.fire_batch(claimed)
    assert {outcomes[r.id] for r in claimed if r.incident_id == acked.id} == {FireResult.LOST}
    assert {outcomes[r.id] for r in claimed if r.incident_id == other.id} == {FireResult.FIRED}
    await env.deliver()
    assert (await env.timeline_kinds(acked)).count("paged") == 1  # on declaring only
    assert (await env.timeline_kinds(other)).count("paged") == 2
    paged = [str(call.params) for call in env.posts("level 2")]
    assert paged and all(other.id in text and acked.id not in text for text in paged)


async def test_a_store_failing_mid_batch_hands_the_whole_batch_back(database_url: str) -> None:
    # One transaction each would fail alike, each waiting out the store's bound: not tried.
    env = await start_env(database_url, policy=policy_without_paging())
    try:
        handler = _Tea()
        env.services.reminders.register(["tea"], handler)
        incident = await env.declare("P3", "Kettle")
        ids = await _tea_reminders(env, incident, ["outage", "one", "two"])
        with pytest.raises(StoreUnavailable, match="tripped the fuse"):
            await env.services.reminders.fire_due()
        assert handler.calls == [ids[0]]  # the batch stopped there, and was not retried
        stored = {r.id: r for r in await env.reminders(incident)}
        assert {stored[rid].status for rid in ids} == {ReminderStatus.PENDING}
        assert await _tea_lines(env, incident) == []
    finally:
        await stop_env(env)
