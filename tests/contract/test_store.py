"""The Store contract, against SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from bot import audit, dedup, outbox
from bot.audit import AuditLog, AuditRecord
from bot.clock import FakeClock
from bot.errors import Conflict, StoreUnavailable
from bot.incidents import storage
from bot.models import Incident, Severity, Status, TimelineEvent
from bot.outbox import OutboxDispatcher
from bot.store import Store, migrate
from bot.store.migrate import available_migrations, pending_migrations
from bot.store.postgres import PostgresStore

NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


def _incident(incident_id: str = "INC-20261127-001") -> Incident:
    return Incident(
        id=incident_id,
        title="Checkout API returns 502",
        severity=Severity.P1,
        status=Status.INVESTIGATING,
        declared_by="U0ALICE",
        declared_at=NOW,
        updated_at=NOW,
        services=("checkout",),
        roles={"commander": "U0ALICE"},
    )


async def test_migrations_are_idempotent(store: Store) -> None:
    assert await migrate(store) == []
    assert await pending_migrations(store) == []


async def test_concurrent_migrations_from_two_processes(open_store: Callable[[], Store]) -> None:
    first, second = open_store(), open_store()
    await first.open()
    await second.open()
    try:
        results = await asyncio.gather(migrate(first), migrate(second), return_exceptions=True)
        for result in results:
            assert not isinstance(result, BaseException), result
        # Each migration applied once, by one process or the other (they may take turns).
        applied = sorted(name for names in results for name in names)  # type: ignore[union-attr]
        assert applied == [f"{m.version:04d}_{m.name}" for m in available_migrations()]
    finally:
        await first.close()
        await second.close()


async def test_transaction_commits_or_rolls_back_whole(store: Store) -> None:
    async with store.transaction() as tx:
        await storage.insert(tx, _incident(), day="20261127", seq=1)
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await storage.insert(tx, _incident("INC-20261127-002"), day="20261127", seq=2)
            raise RuntimeError("boom")
    async with store.transaction() as tx:
        assert await storage.get(tx, "INC-20261127-001") is not None
        assert await storage.get(tx, "INC-20261127-002") is None


async def test_incident_round_trip_and_optimistic_update(store: Store) -> None:
    original = _incident()
    async with store.transaction() as tx:
        await storage.insert(tx, original, day="20261127", seq=1)
    async with store.transaction() as tx:
        loaded = await storage.get(tx, original.id)
    assert loaded == original
    async with store.transaction() as tx:
        updated = await storage.update(tx, original.evolve(status=Status.IDENTIFIED))
    assert updated.version == 2
    with pytest.raises(Conflict):
        async with store.transaction() as tx:
            await storage.update(tx, original.evolve(status=Status.MONITORING))
    async with store.transaction() as tx:
        loaded = await storage.get(tx, original.id)
    assert loaded is not None and loaded.status is Status.IDENTIFIED


async def test_sequence_is_unique_under_concurrency(store: Store) -> None:
    async def take() -> int:
        async with store.transaction() as tx:
            return await storage.next_sequence(tx, "20261127")

    numbers = await asyncio.gather(*(take() for _ in range(30)))
    assert sorted(numbers) == list(range(1, 31))
    async with store.transaction() as tx:
        assert await storage.next_sequence(tx, "20261128") == 1


async def test_timeline_in_order(store: Store) -> None:
    async with store.transaction() as tx:
        await storage.insert(tx, _incident(), day="20261127", seq=1)
        for minute, text in ((5, "second"), (1, "first")):
            await storage.add_timeline(
                tx,
                TimelineEvent(
                    incident_id="INC-20261127-001",
                    at=NOW.replace(minute=minute),
                    actor="U0ALICE",
                    kind="note",
                    text=text,
                    data={"n": minute},
                ),
            )
    async with store.transaction() as tx:
        events = await storage.timeline(tx, "INC-20261127-001")
    assert [e.text for e in events] == ["first", "second"]
    assert events[1].data == {"n": 5}


async def test_request_deduplication(store: Store) -> None:
    async with store.transaction() as tx:
        assert await dedup.mark_handled(tx, "trigger:1", NOW)
    async with store.transaction() as tx:
        assert not await dedup.mark_handled(tx, "trigger:1", NOW)
        assert await dedup.mark_handled(tx, None, NOW)


async def _append_many(store: Store, count: int) -> None:
    for n in range(count):
        async with store.transaction() as tx:
            await audit.append(
                tx,
                NOW,
                AuditRecord(
                    actor="U0ALICE",
                    action="incident.note",
                    target="INC-20261127-001",
                    outcome="ok",
                    args={"n": n, "dsn": "postgresql://app:hunter2@db/x"},
                ),
            )


async def test_audit_chain_verifies_and_redacts(store: Store) -> None:
    await _append_many(store, 5)
    log = AuditLog(store, FakeClock(NOW))
    result = await log.verify()
    assert result.ok and result.checked == 5
    entries = [entry async for entry in log.entries()]
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].args["dsn"] == "***"
    assert entries[1].prev_hash == entries[0].hash


async def test_audit_concurrent_appends_keep_one_chain(store: Store) -> None:
    await asyncio.gather(*(_append_many(store, 4) for _ in range(5)))
    result = await AuditLog(store, FakeClock(NOW)).verify()
    assert result.ok and result.checked == 20


@pytest.mark.parametrize(
    ("tamper", "broken_at"),
    [
        ("UPDATE audit_log SET outcome = 'refused' WHERE seq = 3", 3),
        ("UPDATE audit_log SET args = '{\"n\":99}' WHERE seq = 2", 2),
        ("DELETE FROM audit_log WHERE seq = 4", 4),
        ("DELETE FROM audit_log WHERE seq = 6", 6),
    ],
)
async def test_audit_verify_finds_first_broken_entry(
    store: Store, tamper: str, broken_at: int
) -> None:
    await _append_many(store, 6)
    async with store.transaction() as tx:
        await tx.execute(tamper)
    result = await AuditLog(store, FakeClock(NOW)).verify()
    assert not result.ok
    assert result.first_broken_seq == broken_at


async def test_outbox_delivers_each_effect_once_across_dispatchers(
    store: Store, open_store: Callable[[], Store]
) -> None:
    clock = FakeClock(NOW)
    async with store.transaction() as tx:
        for n in range(40):
            await outbox.enqueue(tx, NOW, "test.effect", {"n": n})
    other = open_store()
    await other.open()
    delivered: list[int] = []

    async def handler(effect: outbox.Effect) -> None:
        delivered.append(effect.payload["n"])
        await asyncio.sleep(0)

    first = OutboxDispatcher(store, clock, batch_size=5)
    second = OutboxDispatcher(other, clock, batch_size=5)
    for dispatcher in (first, second):
        dispatcher.register("test.effect", handler)
    try:
        await asyncio.gather(first.deliver_due(), second.deliver_due())
    finally:
        await other.close()
    assert sorted(delivered) == list(range(40))
    assert await first.pending_count() == 0


async def test_unreachable_database_raises_store_unavailable(tmp_path: object) -> None:
    store = PostgresStore("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1", timeout=1)
    with pytest.raises(StoreUnavailable) as caught:
        await store.open()
    assert "PostgreSQL is unavailable" in str(caught.value)


async def test_commit_hooks_run_in_order_and_only_on_commit(store: Store) -> None:
    seen: list[str] = []

    async with store.transaction() as tx:

        async def before() -> None:
            # Inside the transaction: its writes commit with the rest.
            seen.append("before")
            await tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (9001, "hook", 0.0),
            )

        tx.after_commit(lambda: seen.append("after"))
        tx.before_commit(before)
        seen.append("body")
    assert seen == ["body", "before", "after"]
    async with store.transaction() as tx:
        row = await tx.fetchone("SELECT name FROM schema_migrations WHERE version = 9001")
    assert row == {"name": "hook"}

    seen.clear()
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            tx.after_commit(lambda: seen.append("after"))
            raise RuntimeError("rolled back")
    assert seen == []

    async def failing() -> None:
        await tx.execute("DELETE FROM schema_migrations WHERE version = 9001")
        raise RuntimeError("hook refused")

    with pytest.raises(RuntimeError, match="hook refused"):
        async with store.transaction() as tx:
            tx.before_commit(failing)
            tx.after_commit(lambda: seen.append("after"))
    assert seen == []
    async with store.transaction() as tx:
        assert await tx.fetchone("SELECT 1 AS one FROM schema_migrations WHERE version = 9001")
