"""Effects queued in a transaction that buffers them (a declaration, a batch of firings) are
written at its commit, in the order queued; the debounce's reads in that transaction see them
already (issue 19: a declaration's outbox rows in one statement)."""

from __future__ import annotations

from bot import outbox
from bot.outbox import queue
from bot.store import Store
from tests.contract.outbox_rows import NOW


async def test_a_buffered_effect_is_waiting_before_it_is_written(store: Store) -> None:
    async with store.transaction() as tx:
        queue.buffer(tx)
        await outbox.enqueue(tx, NOW, "home", {"user_id": "U1"}, lane="INC-1")
        await outbox.enqueue(tx, NOW, "post", {"n": 1}, lane="INC-1")
        await outbox.enqueue(tx, NOW, "home", {"user_id": "U2"})
        # Not written yet, yet queued: a debounce in this transaction queues no second one.
        assert await tx.fetchone("SELECT id FROM outbox") is None
        assert await outbox.waiting(tx, "home", {"user_id": "U1"})
        assert not await outbox.waiting(tx, "home", {"user_id": "U3"})
        assert not await outbox.waiting(tx, "post", {"user_id": "U1"})
        assert await outbox.waiting_payloads(tx, "home") == [{"user_id": "U1"}, {"user_id": "U2"}]
    async with store.transaction() as tx:
        rows = await tx.fetchall("SELECT kind, lane, payload FROM outbox ORDER BY id")
        assert await outbox.waiting(tx, "home", {"user_id": "U1"})
        assert await outbox.waiting_payloads(tx, "home") == [{"user_id": "U1"}, {"user_id": "U2"}]
    assert [(r["kind"], r["lane"], r["payload"]) for r in rows] == [
        ("home", "INC-1", '{"user_id": "U1"}'),
        ("post", "INC-1", '{"n": 1}'),
        ("home", None, '{"user_id": "U2"}'),
    ]
