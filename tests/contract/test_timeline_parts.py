"""A timeline line's references survive the store (SQLite and PostgreSQL), and rows written
before parts were kept read into the same parts (#16.2)."""

from __future__ import annotations

from datetime import UTC, datetime

from bot import refs
from bot.incidents import journal, storage
from bot.models import Incident, Severity, Status, TimelineEvent
from bot.refs import Channel, Group, Person
from bot.store import Store

NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
ID = "INC-20261127-001"
WORDS = "Checkout <!here> & cart down"  # a person's words: stored as they are


def _incident() -> Incident:
    return Incident(
        id=ID,
        title="Checkout down",
        severity=Severity.P1,
        status=Status.INVESTIGATING,
        declared_by="U0ALICE",
        declared_at=NOW,
        updated_at=NOW,
    )


async def test_parts_round_trip_and_older_rows_read_the_same(store: Store) -> None:
    line = refs.text("Update by ", Person("U0ALICE"), " in ", Channel("C0ROOM"), f": {WORDS}")
    paged = refs.text("Paged level 1: ", Person("U0BOB"), " ", Group("S0SRE"))
    async with store.transaction() as tx:
        await storage.insert(tx, _incident(), day="20261127", seq=1)
        for text, said in ((line, WORDS), (paged, "")):
            await journal.record(
                tx, NOW, ID, actor="U0ALICE", kind="noted", text=text, said=said,
                action="test", args={},
            )  # fmt: skip
        # As the bot wrote rows before parts were kept: markup in the text, nothing else.
        await storage.add_timeline(
            tx,
            TimelineEvent(
                incident_id=ID,
                at=NOW,
                actor="U0ALICE",
                kind="noted",
                text=f"Update by <@U0ALICE> in <#C0ROOM|room>: {WORDS}",
                said=WORDS,
            ),
        )
    async with store.transaction() as tx:
        new, new_paged, old = await storage.timeline(tx, ID)
    assert (new.parts, new.said, new_paged.parts) == (line, WORDS, paged)
    assert new.text == f"Update by @U0ALICE in #C0ROOM: {WORDS}"  # plain, for search
    assert "parts" not in new.data
    assert (old.parts, old.said) == (line, WORDS)
