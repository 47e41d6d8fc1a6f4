"""reminders.insert_many on both stores: one statement, the rows as stored in the order
given, those due at once claimed by the owner (issue 19: a declaration's plan in one trip)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.reminders import storage as reminders
from bot.reminders.model import PlannedReminder, ReminderStatus
from bot.store import Store

NOW = datetime(2026, 12, 4, 14, 0, tzinfo=UTC)


async def test_insert_many_returns_the_rows_in_the_order_given(store: Store) -> None:
    planned = [
        PlannedReminder("zeta", NOW + timedelta(hours=2), subject="thing:1"),
        PlannedReminder("alpha", NOW, level=1, notify=("U0A", "S0B"), subject="thing:1"),
        PlannedReminder("alpha", NOW + timedelta(minutes=5), level=2, subject="thing:1"),
        PlannedReminder("mid", NOW - timedelta(seconds=1), level=3, subject="thing:2"),
    ]
    async with store.transaction() as tx:
        written = await reminders.insert_many(
            tx, None, 7, planned, NOW, owner="me", claimed_until=NOW.timestamp() + 30
        )
        assert await reminders.insert_many(tx, None, 7, [], NOW, owner="me") == []
    assert [(r.kind, r.level, r.due_at, r.subject) for r in written] == [
        (p.kind, p.level, p.due_at, p.subject) for p in planned
    ]
    assert [r.status for r in written] == [
        ReminderStatus.PENDING,
        ReminderStatus.FIRING,
        ReminderStatus.PENDING,
        ReminderStatus.FIRING,
    ]
    assert [r.claimed_by for r in written] == [None, "me", None, "me"]
    assert written[1].notify == ("U0A", "S0B") and written[1].plan == 7
    assert [r.id for r in written] == sorted(r.id for r in written)
    async with store.transaction() as tx:
        stored = [await reminders.get(tx, r.id) for r in written]
    assert stored == written

    # Without an owner nothing is claimed, due or not.
    async with store.transaction() as tx:
        unclaimed = await reminders.insert_many(tx, None, 1, planned[1:2], NOW)
    assert unclaimed[0].status is ReminderStatus.PENDING and unclaimed[0].claimed_by is None
