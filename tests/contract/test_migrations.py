"""The migration runner on both stores: files run whole and atomically, applied files are
checksummed, and a database newer than the code is refused."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

import pytest

from bot.errors import SchemaMismatch, StoreError
from bot.store import Store, migrate
from bot.store.base import Tx
from bot.store.migrate import Migration, available_migrations

# A body with semicolons inside it: PostgreSQL's dollar-quoted function and DO block, SQLite's
# trigger. Splitting the file on every `;` (as the runner did before issue 7) breaks each.
BODIES = {
    "postgres": """
-- Keep a count of notes; the body below holds several statements.
CREATE TABLE note_counts (incident_id TEXT PRIMARY KEY, notes INTEGER NOT NULL);
CREATE FUNCTION count_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO note_counts (incident_id, notes) VALUES (NEW.incident_id, 1)
        ON CONFLICT (incident_id) DO UPDATE SET notes = note_counts.notes + 1;
    RETURN NEW;
END;
$$;
CREATE TRIGGER timeline_counts AFTER INSERT ON timeline
    FOR EACH ROW EXECUTE FUNCTION count_note();
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM note_counts) THEN
        INSERT INTO note_counts (incident_id, notes) VALUES ('seed; with a semicolon', 0);
    END IF;
END;
$$;
""",
    "sqlite": """
-- Keep a count of notes; the trigger body below holds several statements.
CREATE TABLE note_counts (incident_id TEXT PRIMARY KEY, notes INTEGER NOT NULL);
CREATE TRIGGER timeline_counts AFTER INSERT ON timeline
BEGIN
    INSERT OR IGNORE INTO note_counts (incident_id, notes) VALUES (NEW.incident_id, 0);
    UPDATE note_counts SET notes = notes + 1 WHERE incident_id = NEW.incident_id;
END;
INSERT INTO note_counts (incident_id, notes) VALUES ('seed; with a semicolon', 0);
""",
}


def _with(*extra: Migration) -> list[Migration]:
    return [*available_migrations(), *extra]


async def _versions(store: Store) -> dict[int, str | None]:
    async with store.transaction() as tx:
        rows = await tx.fetchall("SELECT version, checksum FROM schema_migrations")
    return {int(row["version"]): row["checksum"] for row in rows}


async def test_a_function_body_or_do_block_runs_whole(store: Store) -> None:
    body = Migration(9001, "note_counts", BODIES[store.dialect])
    assert await migrate(store, _with(body)) == ["9001_note_counts"]
    async with store.transaction() as tx:
        await tx.execute(
            "INSERT INTO incidents (id, day, seq, title, severity, status, declared_by,"
            " declared_at, updated_at) VALUES ('INC-1', '20261127', 1, 't', 'P1',"
            " 'investigating', 'U0ALICE', 0, 0)"
        )
        for text in ("one", "two"):
            await tx.execute(
                "INSERT INTO timeline (incident_id, at, actor, kind, text) VALUES (?, 0, ?, ?, ?)",
                ("INC-1", "U0ALICE", "note", text),
            )
        rows = await tx.fetchall("SELECT incident_id, notes FROM note_counts ORDER BY notes")
    assert [(r["incident_id"], r["notes"]) for r in rows] == [
        ("seed; with a semicolon", 0),
        ("INC-1", 2),
    ]
    assert (await _versions(store))[9001] == body.checksum


async def test_a_failing_file_changes_nothing(store: Store) -> None:
    broken = Migration(9002, "half", "CREATE TABLE half_done (x INTEGER);\nSELECT * FROM nowhere;")
    with pytest.raises(StoreError):
        await migrate(store, _with(broken))
    assert 9002 not in await _versions(store)
    async with store.transaction() as tx:  # the first statement went with the second
        with pytest.raises(StoreError):
            await tx.fetchall("SELECT * FROM half_done")


async def test_an_applied_file_that_changed_is_refused(store: Store) -> None:
    edited = [
        Migration(m.version, m.name, m.sql + "\n-- edited afterwards\n") if m.version == 2 else m
        for m in available_migrations()
    ]
    extra = Migration(9003, "never_applied", "CREATE TABLE never_applied (x INTEGER);")
    with pytest.raises(SchemaMismatch) as caught:
        await migrate(store, [*edited, extra])
    message = str(caught.value)
    assert "0002_lifecycle was changed after it was applied" in message
    assert "new migration" in message
    assert 9003 not in await _versions(store)  # refused before applying anything


async def test_a_database_newer_than_the_code_is_refused(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at, checksum)"
            " VALUES (?, ?, ?, ?)",
            (9999, "from_the_future", 0.0, "0" * 64),
        )
    with pytest.raises(SchemaMismatch) as caught:
        await migrate(store)
    message = str(caught.value)
    assert "9999_from_the_future" in message and "newer than" in message


async def test_checksums_are_recorded_for_files_applied_before_they_were_kept(
    store: Store,
) -> None:
    async with store.transaction() as tx:
        await tx.execute("ALTER TABLE schema_migrations DROP COLUMN checksum")
    assert await migrate(store) == []
    recorded = await _versions(store)
    assert recorded == {m.version: m.checksum for m in available_migrations()}


async def test_the_outbox_lane_rename_keeps_the_undone_effects_in_their_lanes(
    store_url: str,
) -> None:
    """0017 renames `outbox.incident_id` to `lane` on a live database: what was queued before
    the upgrade is delivered after it, in its lane's order."""
    from bot.clock import FakeClock
    from bot.outbox import Effect, OutboxDispatcher
    from bot.store import create_store

    store = create_store(store_url)
    await store.open()
    try:
        await migrate(store, [m for m in available_migrations() if m.version < 17])
        async with store.transaction() as tx:
            for n, lane in enumerate(["INC-1", "INC-1/pagerduty", "INC-1", None]):
                await tx.execute(
                    "INSERT INTO outbox (kind, incident_id, payload, created_at, available_at)"
                    " VALUES ('post', ?, ?, 0, 0)",
                    (lane, f'{{"n": {n}}}'),
                )
        assert (await migrate(store))[0] == "0017_outbox_lane"  # and any later ones
        seen: list[tuple[str | None, int]] = []

        async def post(effect: Effect) -> None:
            seen.append((effect.lane, effect.payload["n"]))

        dispatcher = OutboxDispatcher(store, FakeClock())
        dispatcher.register("post", post)
        assert await dispatcher.deliver_due() == 4
        # The heads of the three lanes, then INC-1's second once its first is out.
        assert seen == [("INC-1", 0), ("INC-1/pagerduty", 1), (None, 3), ("INC-1", 2)]
    finally:
        await store.close()


async def test_an_up_to_date_database_is_checked_in_one_transaction(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every start migrates: an up-to-date database took a transaction per shipped file (each
    with its lock and bookkeeping statements), 20-30 ms of every e2e harness on PostgreSQL."""
    opened = 0
    real = store.transaction

    def counted() -> AbstractAsyncContextManager[Tx]:  # the real store's own transaction
        nonlocal opened
        opened += 1
        return real()

    monkeypatch.setattr(store, "transaction", counted)
    assert await migrate(store) == []
    assert opened == 1
    extra = Migration(9004, "one_more", "CREATE TABLE one_more (x INTEGER);")
    assert await migrate(store, _with(extra)) == ["9004_one_more"]
    assert opened == 3  # the check, then the one missing file in its own transaction
    assert (await _versions(store))[9004] == extra.checksum


async def test_escalations_anchored_after_the_declaration_are_read_as_reopenings(
    store_url: str,
) -> None:
    """0028 records what started an escalation; a row written before it says so by its
    anchor: at the declaration, declared; later, a reopening's."""
    from datetime import UTC, datetime, timedelta

    from bot.escalation import storage as escalations
    from bot.incidents import storage as incidents
    from bot.models import Incident, Severity, Status
    from bot.store import create_store

    declared = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
    store = create_store(store_url)
    await store.open()
    try:
        await migrate(store, [m for m in available_migrations() if m.version < 28])
        async with store.transaction() as tx:
            for seq, anchor in ((1, declared), (2, declared + timedelta(hours=3))):
                incident = Incident(
                    id=f"INC-20261127-00{seq}",
                    title="Checkout API returns 502",
                    severity=Severity.P1,
                    status=Status.INVESTIGATING,
                    declared_by="U0ALICE",
                    declared_at=declared,
                    updated_at=declared,
                )
                await incidents.insert(tx, incident, day="20261127", seq=seq)
                await tx.execute(
                    "INSERT INTO escalations (incident_id, plan, severity, anchor_at, level,"
                    " updated_at) VALUES (?, 1, 'P1', ?, 1, ?)",
                    (incident.id, anchor.timestamp(), anchor.timestamp()),
                )
        assert "0028_escalation_start" in await migrate(store)
        async with store.transaction() as tx:
            states = await escalations.get_states(tx, ["INC-20261127-001", "INC-20261127-002"])
        assert states["INC-20261127-001"].started_by == "declared"
        assert states["INC-20261127-002"].started_by == "reopened"
    finally:
        await store.close()
