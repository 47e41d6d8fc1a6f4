"""0016_reminders on both stores: an action item's reminder, stored before the reminder
engine gave each kind its own reference (the item's id in `level`), keeps firing for its
item, and still only one reminder per item may be pending."""

from __future__ import annotations

import pytest

from bot.errors import StoreError
from bot.store import create_store, migrate
from bot.store.migrate import available_migrations

_INCIDENT = (
    "INSERT INTO incidents (id, day, seq, title, severity, status, declared_by, declared_at,"
    " updated_at) VALUES ('INC-1', '20261127', 1, 't', 'P1', 'resolved', 'U0ALICE', 0, 0)"
)
_REMINDER = (
    "INSERT INTO reminders (incident_id, plan, kind, level, due_at, status, created_at, subject)"
    " VALUES ('INC-1', 0, ?, ?, 100, 'pending', 0, ?)"
)


async def test_an_action_item_reminder_moves_its_item_from_level_to_subject(
    store_url: str,
) -> None:
    store = create_store(store_url)
    await store.open()
    try:
        await migrate(store, [m for m in available_migrations() if m.version < 16])
        async with store.transaction() as tx:
            await tx.execute(_INCIDENT)
            for kind, level in (("action_item", 7), ("action_item", 8), ("page", 2)):
                await tx.execute(_REMINDER, (kind, level, None))

        assert await migrate(store, [m for m in available_migrations() if m.version <= 16]) == [
            "0016_reminders"
        ]
        async with store.transaction() as tx:
            rows = await tx.fetchall("SELECT kind, level, subject FROM reminders ORDER BY id")
        assert [(r["kind"], r["level"], r["subject"]) for r in rows] == [
            ("action_item", 0, "action_item:7"),
            ("action_item", 0, "action_item:8"),
            ("page", 2, None),  # escalation's own reminders are left as they were
        ]

        with pytest.raises(StoreError):  # a second pending reminder for item 7
            async with store.transaction() as tx:
                await tx.execute(_REMINDER, ("action_item", 0, "action_item:7"))
        with pytest.raises(StoreError):  # a second pending page of level 2
            async with store.transaction() as tx:
                await tx.execute(_REMINDER, ("page", 2, None))
        async with store.transaction() as tx:  # another item's is welcome
            await tx.execute(_REMINDER, ("action_item", 0, "action_item:9"))
    finally:
        await store.close()
