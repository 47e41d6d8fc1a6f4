"""SQL for the App Home's viewers: who opened it, so changes refresh their view (caller's Tx)."""

from __future__ import annotations

from datetime import datetime

from bot.store import Tx


async def add_viewer(tx: Tx, user_id: str, now: datetime) -> None:
    await tx.execute(
        "INSERT INTO home_viewers (user_id, opened_at) VALUES (?, ?)"
        " ON CONFLICT (user_id) DO UPDATE SET opened_at = excluded.opened_at",
        (user_id, now.timestamp()),
    )


async def viewers(tx: Tx, since: datetime) -> list[str]:
    """Who opened the App Home at `since` or later (the others' views are left alone)."""
    rows = await tx.fetchall(
        "SELECT user_id FROM home_viewers WHERE opened_at >= ? ORDER BY user_id",
        (since.timestamp(),),
    )
    return [row["user_id"] for row in rows]


async def prune_viewers(tx: Tx, before: datetime) -> None:
    """Forget who has not opened the App Home since `before`."""
    await tx.execute("DELETE FROM home_viewers WHERE opened_at < ?", (before.timestamp(),))
