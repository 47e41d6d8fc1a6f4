"""reminders.insert_many on both stores: one statement, the rows as stored in the order
given, those due at once claimed by the owner (issue 19: a declaration's plan in one trip)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.reminders import storage as reminders
from bot.reminders.model import PlannedReminder, ReminderStatus
from bot.store import Row, Store, Tx

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
    async with store.transaction() as tx:
        raw = await tx.fetchall(
            "SELECT reason, actor, created_at, claimed_until FROM reminders WHERE plan = 7"
            " ORDER BY id"
        )
    until = NOW.timestamp() + 30
    assert [r["claimed_until"] for r in raw] == [None, until, None, until]
    shared = {(r["reason"], r["actor"], r["created_at"]) for r in raw}
    assert shared == {("", None, NOW.timestamp())}

    # Without an owner nothing is claimed, due or not.
    async with store.transaction() as tx:
        unclaimed = await reminders.insert_many(tx, None, 1, planned[1:2], NOW)
    assert unclaimed[0].status is ReminderStatus.PENDING and unclaimed[0].claimed_by is None


class _Recording:
    """A real transaction that keeps the parameters of each statement it is sent."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.sent: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tx, name)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self.sent.append(len(params))
        return await self.tx.fetchall(sql, params)


async def test_a_plan_of_seven_is_sent_with_fewer_than_50_parameters(store: Store) -> None:
    # psycopg caches a statement's conversion only under 50 parameters: a declaration's plan
    # (five or so) would otherwise be parsed again on every declaration.
    planned = [PlannedReminder(f"k{n}", NOW + timedelta(minutes=n), level=n) for n in range(7)]
    async with store.transaction() as tx:
        recording = _Recording(tx)
        written = await reminders.insert_many(
            recording,  # type: ignore[arg-type]
            None,
            3,
            planned,
            NOW,
            owner="me",
            claimed_until=NOW.timestamp() + 30,
        )
    assert recording.sent and max(recording.sent) < 50
    assert [(r.kind, r.level) for r in written] == [(p.kind, p.level) for p in planned]
    assert [r.status for r in written] == [ReminderStatus.FIRING] + [ReminderStatus.PENDING] * 6
