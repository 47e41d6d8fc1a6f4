"""The audit chain while the bot writes: `verify` reads one snapshot, appenders in several
processes (store handles) keep one chain, and an edit is still named by its first bad entry.

Before issue 7, verify read each page and the chain head in transactions of their own: with
writers going, the head had moved past the last page it read and it reported BROKEN."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

from bot import audit
from bot.audit import AuditLog, AuditRecord, VerifyResult
from bot.clock import FakeClock
from bot.store import Store

NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


def _record(n: int) -> AuditRecord:
    return AuditRecord(
        actor="U0ALICE",
        action="incident.note",
        target="INC-20261127-001",
        outcome="ok",
        args={"n": n},
        incident_id="INC-20261127-001",
    )


async def _head_seq(store: Store) -> int:
    async with store.snapshot() as tx:  # a read: never queues behind the writers' lock
        row = await tx.fetchone("SELECT seq FROM audit_head WHERE id = 1")
    assert row is not None
    return int(row["seq"])


class Writers:
    """Appenders in other "processes" (store handles of their own), writing until stopped;
    each transaction appends two entries, with a statement between them."""

    def __init__(self, open_store: Callable[[], Store], count: int = 2) -> None:
        self.stores = [open_store() for _ in range(count)]
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Writers:
        for store in self.stores:
            await store.open()
            self.tasks.append(asyncio.create_task(self._write(store)))
        return self

    async def _write(self, store: Store) -> None:
        n = 0
        while not self.stop.is_set():
            async with store.transaction() as tx:
                await audit.append(tx, NOW, _record(n))
                await tx.fetchone("SELECT COUNT(*) AS n FROM incidents")
                await audit.append(tx, NOW, _record(n + 1))
            n += 2

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks)
        for store in self.stores:
            await store.close()


@pytest.fixture
async def seeded(store: Store) -> AsyncIterator[Store]:
    async with store.transaction() as tx:
        for n in range(10):
            await audit.append(tx, NOW, _record(n))
    yield store


async def _verify_while_writing(
    store: Store, open_store: Callable[[], Store], rounds: int
) -> list[tuple[VerifyResult, int, int]]:
    """Verify `rounds` times with writers going, each with the head before and after it; on
    a busy machine the writers may not get a turn at first, so go on (boundedly) until the
    head has moved during the rounds."""
    log = AuditLog(store, FakeClock(NOW), page_size=7)  # many pages: a long read
    results: list[tuple[VerifyResult, int, int]] = []
    async with Writers(open_store):
        while len(results) < rounds or (results[-1][2] <= results[0][1] and len(results) < 500):
            before = await _head_seq(store)
            result = await log.verify()
            results.append((result, before, await _head_seq(store)))
    return results


async def test_verify_reports_ok_while_the_bot_writes(
    seeded: Store, open_store: Callable[[], Store]
) -> None:
    results = await _verify_while_writing(seeded, open_store, rounds=10)
    # The writers really wrote while verify read: the head moved during the rounds.
    assert results[-1][2] > results[0][1]
    for result, head_before, head_after in results:
        assert result.ok, result
        assert head_before <= result.checked <= head_after  # one snapshot, counted whole
    final = await AuditLog(seeded, FakeClock(NOW)).verify()
    assert final.ok and final.checked == await _head_seq(seeded)


async def test_an_edit_is_named_while_the_bot_writes(
    seeded: Store, open_store: Callable[[], Store]
) -> None:
    async with seeded.transaction() as tx:
        await tx.execute("UPDATE audit_log SET outcome = 'refused' WHERE seq = 4")
    for result, _, _ in await _verify_while_writing(seeded, open_store, rounds=3):
        assert not result.ok
        assert result.first_broken_seq == 4 and result.reason == "entry content altered"


async def test_concurrent_writers_keep_one_chain_in_append_order(
    store: Store, open_store: Callable[[], Store]
) -> None:
    async with Writers(open_store, count=3) as writers:
        for _ in range(3000):  # until 60 entries are written (the writers never stop alone)
            if await _head_seq(store) >= 60:
                break
            await asyncio.sleep(0.01)
        writers.stop.set()
    result = await AuditLog(store, FakeClock(NOW)).verify()
    assert result.ok and result.checked == await _head_seq(store) >= 60
    entries = [e async for e in AuditLog(store, FakeClock(NOW)).entries()]
    # Each transaction's two entries are chained next to each other, in the order appended.
    for first, second in zip(entries[::2], entries[1::2], strict=True):
        assert second.args["n"] == first.args["n"] + 1


async def test_a_rolled_back_transaction_leaves_no_entry_and_no_gap(store: Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await audit.append(tx, NOW, _record(1))
            raise RuntimeError("the change was refused")
    await AuditLog(store, FakeClock(NOW)).record(_record(2))
    entries = [e async for e in AuditLog(store, FakeClock(NOW)).entries()]
    assert [(e.seq, e.args["n"]) for e in entries] == [(1, 2)]


async def test_entries_appended_by_a_before_commit_hook_are_chained_too(store: Store) -> None:
    async with store.transaction() as tx:

        async def late() -> None:  # a hook that audits, registered after the first entry
            await audit.append(tx, NOW, _record(2))

        await audit.append(tx, NOW, _record(1))
        tx.before_commit(late)
    entries = [e async for e in AuditLog(store, FakeClock(NOW)).entries()]
    assert [e.args["n"] for e in entries] == [1, 2]
    assert (await AuditLog(store, FakeClock(NOW)).verify()).ok
