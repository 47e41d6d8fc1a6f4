"""The pool behind `postgres_url`: a database handed out again is as empty as a new one."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import psycopg
import pytest

from tests.database_pool import DatabasePool
from tests.servers import PostgresServer

pytestmark = pytest.mark.postgres

# What a new database holds besides the system schemas (counted the same way below).
_CONTENTS = """
SELECT (SELECT count(*) FROM pg_class WHERE oid >= 16384)
     + (SELECT count(*) FROM pg_proc WHERE oid >= 16384)
     + (SELECT count(*) FROM pg_type WHERE oid >= 16384)
     + (SELECT count(*) FROM pg_extension WHERE oid >= 16384),
  (SELECT array_agg(nspname::text ORDER BY nspname) FROM pg_namespace
   WHERE nspname NOT LIKE 'pg\\_%')
"""


_pools = itertools.count(1)


@pytest.fixture
def pool(postgres_server: PostgresServer) -> Iterator[DatabasePool]:
    pool = DatabasePool(postgres_server, prefix=f"pool{next(_pools)}_test_")
    try:
        yield pool
    finally:
        pool.close()


def _use(pool: DatabasePool, name: str, *statements: str) -> None:
    with psycopg.connect(pool.server.dsn_for(name), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def _contents(pool: DatabasePool, name: str) -> tuple[object, ...]:
    with psycopg.connect(pool.server.dsn_for(name), autocommit=True) as conn:
        row = conn.execute(_CONTENTS).fetchone()
    assert row is not None
    return tuple(row)


def test_a_used_database_comes_back_empty_with_its_sessions_ended(pool: DatabasePool) -> None:
    name = pool.take()
    new = _contents(pool, name)
    assert new == (0, ["information_schema", "public"])
    _use(
        pool,
        name,
        "CREATE TABLE incidents (id serial PRIMARY KEY, title text)",
        "CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "CREATE TYPE mood AS ENUM ('calm', 'paged')",
        "CREATE SCHEMA audit",
        "CREATE TABLE audit.log (line text)",
    )
    lingering = psycopg.connect(pool.server.dsn_for(name), autocommit=True)
    pool.give_back(name)
    try:
        assert pool.take() == name
        assert _contents(pool, name) == new
        with pytest.raises(psycopg.OperationalError):
            lingering.execute("SELECT 1")
    finally:
        lingering.close()


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER DATABASE {db} SET work_mem = '8MB'",
        "COMMENT ON DATABASE {db} IS 'used'",
        "CREATE TEMP TABLE scratch (i int)",
        "SELECT lo_create(0)",
    ],
)
def test_what_the_reset_cannot_undo_gets_a_new_database(pool: DatabasePool, statement: str) -> None:
    name = pool.take()
    _use(pool, name, statement.format(db=name))
    pool.give_back(name)
    again = pool.take()
    assert again != name
    with psycopg.connect(pool.server.dsn, autocommit=True) as admin:
        names = [row[0] for row in admin.execute("SELECT datname FROM pg_database").fetchall()]
    assert name not in names


def test_a_database_that_refuses_connections_is_replaced(pool: DatabasePool) -> None:
    name = pool.take()
    with psycopg.connect(pool.server.dsn, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    pool.give_back(name)
    assert pool.take() != name


def _rows(pool: DatabasePool, name: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(pool.server.dsn_for(name), autocommit=True) as conn:
        return conn.execute(query).fetchall()


# applied_at too: a database migrated again (not emptied) would show a later one.
_MIGRATED = "SELECT version, checksum, applied_at FROM schema_migrations ORDER BY version"


def test_a_migrated_database_comes_back_holding_only_what_the_migrations_put_there(
    pool: DatabasePool,
) -> None:
    name = pool.take_migrated()
    seeded = _rows(pool, name, "SELECT id, seq, hash FROM audit_head")
    applied = _rows(pool, name, _MIGRATED)
    assert seeded == [(1, 0, "")] and applied
    _use(
        pool,
        name,
        "UPDATE audit_head SET seq = 5, hash = 'abc'",
        "INSERT INTO incident_counters VALUES ('2026-12-05', 3)",
        "INSERT INTO handled_requests VALUES ('k', 1)",
        # A row and one referring to it (the tables are emptied with no foreign key checked).
        "INSERT INTO incidents (id, day, seq, title, severity, status, declared_by,"
        " declared_at, updated_at) VALUES ('INC-1', '2026-12-05', 1, 't', 'P1', 'open', 'U',"
        " 0, 0)",
        "INSERT INTO timeline (incident_id, at, actor, kind, text) VALUES ('INC-1', 0, 'U',"
        " 'declared', 't')",  # takes the timeline's sequence: 1
        "SELECT nextval('timeline_id_seq')",  # as an insert into the timeline would: 2
    )
    pool.give_back(name)
    assert pool.take_migrated() == name
    assert _rows(pool, name, "SELECT id, seq, hash FROM audit_head") == seeded
    assert _rows(pool, name, "SELECT count(*) FROM handled_requests") == [(0,)]
    assert _rows(pool, name, "SELECT count(*) FROM incident_counters") == [(0,)]
    assert _rows(pool, name, "SELECT count(*) FROM incidents") == [(0,)]
    assert _rows(pool, name, "SELECT count(*) FROM timeline") == [(0,)]
    assert _rows(pool, name, "SELECT nextval('timeline_id_seq')") == [(1,)]
    assert _rows(pool, name, _MIGRATED) == applied


@pytest.mark.parametrize(
    "change",
    [
        "ALTER TABLE incidents ADD COLUMN extra int",
        "CREATE INDEX extra ON incidents (id)",
        "UPDATE schema_migrations SET checksum = NULL",
        "DROP TABLE home_viewers",
    ],
)
def test_a_migrated_database_whose_schema_changed_is_migrated_again_from_empty(
    pool: DatabasePool, change: str
) -> None:
    name = pool.take_migrated()
    fresh = pool._snapshot(name)
    _use(pool, name, change)
    pool.give_back(name)
    again = pool.take_migrated()
    assert pool._snapshot(again).fingerprint == fresh.fingerprint
    assert _rows(pool, again, "SELECT count(*) FROM schema_migrations WHERE checksum IS NULL") == [
        (0,)
    ]
