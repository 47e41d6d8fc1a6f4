"""bot.store.buffers.TxBuffer on both stores: one collection per transaction, written once
just before it commits, gone with a transaction that rolls back."""

from __future__ import annotations

import gc

import pytest

from bot.store import Store, Tx
from bot.store.buffers import TxBuffer

_NOTE = "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"


async def _names(store: Store) -> list[str]:
    async with store.transaction() as tx:
        rows = await tx.fetchall(
            "SELECT name FROM schema_migrations WHERE version >= 9100 ORDER BY version"
        )
    return [str(row["name"]) for row in rows]


async def test_collected_rows_are_written_once_at_commit_in_order(store: Store) -> None:
    writes: list[list[str]] = []

    async def write(tx: Tx, names: list[str]) -> None:
        writes.append(list(names))
        for n, name in enumerate(names):
            await tx.execute(_NOTE, (9100 + n, name, 0.0))

    notes: TxBuffer[list[str]] = TxBuffer(list, write)
    async with store.transaction() as tx:
        assert notes.get(tx) is None  # collects nothing until opened
        notes.open(tx).append("first")
        notes.open(tx).append("second")  # the same collection, one write
        seen = await tx.fetchall("SELECT name FROM schema_migrations WHERE version >= 9100")
        assert seen == []  # not before the commit
    assert writes == [["first", "second"]]
    assert await _names(store) == ["first", "second"]

    async with store.transaction() as tx:  # a new transaction starts empty
        assert notes.get(tx) is None


async def test_a_rolled_back_transaction_writes_nothing_and_keeps_nothing(store: Store) -> None:
    writes: list[list[str]] = []

    async def write(tx: Tx, names: list[str]) -> None:
        writes.append(names)

    notes: TxBuffer[list[str]] = TxBuffer(list, write)
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            notes.open(tx).append("lost")
            raise RuntimeError("rolled back")
    assert writes == []
    del tx
    gc.collect()
    assert len(notes._held) == 0  # the collection went with its transaction


async def test_last_runs_after_the_other_hooks_even_those_they_register(store: Store) -> None:
    order: list[str] = []

    async def early(tx: Tx, items: list[str]) -> None:
        order.append("early")
        late.open(tx)  # a write registered by another write still runs before `last`

    async def later(tx: Tx, items: list[str]) -> None:
        order.append("later")

    async def final(tx: Tx, items: list[str]) -> None:
        order.append("final")

    closing: TxBuffer[list[str]] = TxBuffer(list, final, last=True)
    first: TxBuffer[list[str]] = TxBuffer(list, early)
    late: TxBuffer[list[str]] = TxBuffer(list, later)
    async with store.transaction() as tx:
        closing.open(tx)
        first.open(tx)
    assert order == ["early", "later", "final"]


async def test_a_buffer_without_a_write_is_the_transactions_memory(store: Store) -> None:
    seen: TxBuffer[list[str]] = TxBuffer(list)
    async with store.transaction() as tx:
        seen.open(tx).append("declared")
        assert seen.get(tx) == ["declared"]
    async with store.transaction() as tx:
        assert seen.get(tx) is None  # each transaction its own
