"""Empty test databases handed out without paying `CREATE DATABASE` for each test.

`CREATE DATABASE` copies template1 and costs 0.1-0.25 s on the throwaway server; about 200
tests each needed one. A database a test has finished with is instead emptied for the next
test: its sessions are ended, every schema is dropped and `public` is made again exactly as
template1 has it. Then it is compared with a brand-new database (`_FINGERPRINT`: every object
made after initdb, the schemas with their owners, rights and comments, the database's own
settings, rights and shared dependencies, prepared transactions, replication slots). Anything
that differs -- or any step that fails -- and the database is dropped and a new one created,
as before. Roles are server-wide, so a test's roles outlived its database before too.

`take_migrated` hands out a database migrated to the newest schema (bot.store.migrate) for
the fixtures whose first step is migrating: a used database whose schema still matches a
freshly migrated one object for object is emptied (DELETE from every table, its tables'
sequences restarted) and given the rows the migrations put there again, then checked against
that freshly migrated one (schema, rows, sequences, as above); else an empty one is migrated.
A migration costs 0.15-0.3 s. Not TRUNCATE: it gives each of the ~27 tables and their indexes
new files, 0.12-0.2 s a test, where a test's few rows are deleted in 0.02 s.

What a reused database does not start from zero: its cumulative statistics (pg_stat_database,
pg_stat_statements entries under its oid). No test reads those for its own database.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import warnings
from dataclasses import dataclass

import psycopg
from psycopg import sql

from bot.store import create_store, migrate
from tests.servers import PostgresServer

# Objects made after initdb have OIDs from here (FirstNormalObjectId in PostgreSQL).
_FIRST_NORMAL_OID = 16384
_SESSIONS_GONE_S = 5.0

# Catalogs of the database (not shared ones) whose rows have an OID: any row numbered after
# initdb is something a test made. pg_namespace is compared by name instead, since `public`
# is made again (with a new OID) by the reset.
_CATALOGS = """
SELECT c.relname FROM pg_class c
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'oid'
WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'r'
  AND NOT c.relisshared AND c.relname <> 'pg_namespace'
ORDER BY c.relname
"""

_FINGERPRINT = """
SELECT json_build_object(
  'objects', {objects},
  'schemas', (SELECT json_agg(json_build_array(
      nspname, nspowner::regrole::text, nspacl::text, obj_description(oid, 'pg_namespace'))
      ORDER BY nspname) FROM pg_namespace),
  'database', (SELECT json_build_array(
      datdba::regrole::text, datallowconn, datconnlimit, datacl::text, datistemplate,
      encoding, datcollate, datctype, dattablespace, shobj_description(oid, 'pg_database'))
      FROM pg_database WHERE datname = current_database()),
  'settings', (SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d
      ON d.oid = s.setdatabase WHERE d.datname = current_database()),
  'shared_dependencies', (SELECT count(*) FROM pg_shdepend s JOIN pg_database d
      ON d.oid = s.dbid WHERE d.datname = current_database()),
  'prepared', (SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()),
  'slots', (SELECT count(*) FROM pg_replication_slots WHERE database = current_database()),
  'relations', (SELECT json_agg(json_build_array(c.relname, c.relkind, c.relpersistence,
      c.relrowsecurity, c.reloptions::text,
      (SELECT json_agg(json_build_array(a.attname, format_type(a.atttypid, a.atttypmod),
          a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated)
          ORDER BY a.attnum)
       FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
       WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
      CASE WHEN c.relkind = 'i' THEN pg_get_indexdef(c.oid)
           WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
      obj_description(c.oid, 'pg_class'), c.relacl::text) ORDER BY c.relname)
      FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace),
  'constraints', (SELECT json_agg(json_build_array(
      conrelid::regclass::text, conname, pg_get_constraintdef(oid)) ORDER BY conname, conrelid)
      FROM pg_constraint WHERE connamespace = 'public'::regnamespace),
  'triggers', (SELECT json_agg(pg_get_triggerdef(t.oid) ORDER BY t.tgname, t.tgrelid)
      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
      WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal),
  'functions', (SELECT json_agg(pg_get_functiondef(oid) ORDER BY proname, oid::regprocedure::text)
      FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND prokind IN ('f', 'p')),
  'types', (SELECT json_agg(json_build_array(typname, typtype,
      (SELECT json_agg(enumlabel ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = t.oid))
      ORDER BY typname) FROM pg_type t WHERE typnamespace = 'public'::regnamespace),
  'sequences', (SELECT json_agg(json_build_array(sequencename, last_value, start_value,
      increment_by, min_value, max_value, cycle) ORDER BY sequencename)
      FROM pg_sequences WHERE schemaname = 'public')
)::text
"""

_TABLES = """
SELECT relname FROM pg_class
WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p') ORDER BY relname
"""
# Kept through a reuse: when each migration was applied is no part of the schema.
_BOOKKEEPING = "schema_migrations"
# The sequences of public's tables (their identity and serial columns): what TRUNCATE ...
# RESTART IDENTITY restarts.
_SEQUENCES = """
SELECT s.relname FROM pg_class s
JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
JOIN pg_class t ON t.oid = d.refobjid
WHERE s.relkind = 'S' AND t.relnamespace = 'public'::regnamespace
  AND t.relname <> 'schema_migrations'
ORDER BY s.relname
"""


@dataclass(frozen=True)
class _Migrated:
    """What a freshly migrated database holds."""

    fingerprint: str
    tables: list[str]  # every table of `public` but the bookkeeping one
    sequences: list[str]  # theirs (_SEQUENCES)
    seeds: dict[str, str]  # table -> its rows (json) right after migrating
    contents: str


def run_migrations(dsn: str) -> None:
    """bot.store.migrate on the database at `dsn` (PostgreSQL or SQLite), from sync code."""

    # In a thread of its own: the fixture runs beside the test's event loop, not in it.
    async def run() -> None:
        store = create_store(dsn, pool_size=1)
        await store.open()
        try:
            await migrate(store)
        finally:
            await store.close()

    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:  # raised again in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="migrate-test-database")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def _contents_query(tables: list[str]) -> sql.Composed:
    parts = [
        sql.SQL("(SELECT json_agg(x ORDER BY x::text) FROM public.{} x)").format(
            sql.Identifier(table)
        )
        for table in tables
    ]
    parts.append(
        sql.SQL(
            "(SELECT json_agg(json_build_array(version, name, checksum) ORDER BY version)"
            " FROM public.{})"
        ).format(sql.Identifier(_BOOKKEEPING))
    )
    return sql.SQL("SELECT json_build_array({})::text").format(sql.SQL(", ").join(parts))


# template1's public schema (PostgreSQL 15+: owned by pg_database_owner, usage for all).
_RESET = """
DO $$
DECLARE s name;
BEGIN
  FOR s IN SELECT nspname FROM pg_namespace
           WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
             AND nspname NOT LIKE 'pg_temp_%' AND nspname NOT LIKE 'pg_toast_temp_%'
  LOOP
    EXECUTE format('DROP SCHEMA %I CASCADE', s);
  END LOOP;
END $$;
CREATE SCHEMA public AUTHORIZATION pg_database_owner;
GRANT USAGE ON SCHEMA public TO PUBLIC;
COMMENT ON SCHEMA public IS 'standard public schema';
"""


class DatabasePool:
    """Hands out empty databases `<prefix><n>` on one server; `give_back` after the test."""

    def __init__(self, server: PostgresServer, prefix: str = "test_") -> None:
        self.server = server
        self.prefix = prefix
        self._numbers = itertools.count(1)
        self._used: list[str] = []
        self._pristine: str | None = None
        self._migrated: _Migrated | None = None
        self._objects: sql.Composable | None = None

    def take(self) -> str:
        """The name of an empty database no one is connected to."""
        while self._used:
            name = self._used.pop()
            try:
                if self._reset(name):
                    return name
            except psycopg.Error:
                pass  # whatever the test left, a new database will do
            self._drop(name)
        name = f"{self.prefix}{next(self._numbers)}"
        self.server.create_database(name)
        if self._pristine is None:
            with psycopg.connect(self.server.dsn_for(name), autocommit=True) as conn:
                self._pristine = self._fingerprint(conn)
        return name

    def take_migrated(self) -> str:
        """The name of a database migrated to the newest schema, holding only what the
        migrations put there, that no one is connected to."""
        if self._used and self._migrated is not None:
            name = self._used.pop()
            try:
                if self._empty_migrated(name, self._migrated):
                    return name
            except psycopg.Error:
                pass
            self._used.append(name)  # take() empties it, or drops it
        name = self.take()
        run_migrations(self.server.dsn_for(name))
        if self._migrated is None:
            self._migrated = self._snapshot(name)
        return name

    def give_back(self, name: str) -> None:
        """The test is over: its database is emptied when the next test needs one (not now,
        since the test's own bot may still be stopping)."""
        self._used.append(name)

    def close(self) -> None:
        for name in self._used:
            self._drop(name)
        self._used.clear()

    def _reset(self, name: str) -> bool:
        if self._pristine is None or not self._end_sessions(name):
            return False
        with psycopg.connect(self.server.dsn_for(name), autocommit=True) as conn:
            conn.execute(_RESET)
            return self._fingerprint(conn) == self._pristine

    def _empty_migrated(self, name: str, migrated: _Migrated) -> bool:
        if not self._end_sessions(name):
            return False
        with psycopg.connect(self.server.dsn_for(name), autocommit=True) as conn:
            # A table or sequence missing fails a statement; anything else differing, the
            # check after it.
            with conn.transaction():
                # Every table is emptied: no foreign key need be checked meanwhile (nor can
                # the deletes be put in their order). Superuser only: the tests connect as one.
                conn.execute("SET LOCAL session_replication_role = replica")
                conn.execute(
                    sql.SQL("").join(
                        sql.SQL("DELETE FROM public.{};").format(sql.Identifier(t))
                        for t in migrated.tables
                    )
                )
                if migrated.sequences:
                    conn.execute(
                        sql.SQL("").join(
                            sql.SQL("ALTER SEQUENCE public.{} RESTART;").format(sql.Identifier(q))
                            for q in migrated.sequences
                        )
                    )
                for table, rows in migrated.seeds.items():
                    conn.execute(
                        sql.SQL(
                            "INSERT INTO {table} SELECT * FROM json_populate_recordset("
                            "NULL::{table}, %s)"
                        ).format(table=sql.Identifier(table)),
                        (rows,),
                    )
            row = conn.execute(_contents_query(migrated.tables)).fetchone()
            return self._fingerprint(conn) == migrated.fingerprint and (
                row is not None and row[0] == migrated.contents
            )

    def _snapshot(self, name: str) -> _Migrated:
        with psycopg.connect(self.server.dsn_for(name), autocommit=True) as conn:
            tables = [
                str(row[0]) for row in conn.execute(_TABLES).fetchall() if row[0] != _BOOKKEEPING
            ]
            seeds: dict[str, str] = {}
            for table in tables:
                rows = conn.execute(
                    sql.SQL("SELECT json_agg(x)::text FROM public.{} x").format(
                        sql.Identifier(table)
                    )
                ).fetchone()
                if rows is not None and rows[0] is not None:
                    seeds[table] = str(rows[0])
            sequences = [str(row[0]) for row in conn.execute(_SEQUENCES).fetchall()]
            contents = conn.execute(_contents_query(tables)).fetchone()
            assert contents is not None
            return _Migrated(self._fingerprint(conn), tables, sequences, seeds, str(contents[0]))

    def _end_sessions(self, name: str) -> bool:
        with psycopg.connect(self.server.dsn, autocommit=True) as admin:
            deadline = time.monotonic() + _SESSIONS_GONE_S
            while admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            ).fetchone() != (0,):
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.01)
        return True

    def _fingerprint(self, conn: psycopg.Connection[tuple[object, ...]]) -> str:
        if self._objects is None:
            catalogs = [row[0] for row in conn.execute(_CATALOGS).fetchall()]
            self._objects = sql.SQL(
                "(SELECT json_object_agg(c, n) FROM (VALUES {}) v(c, n))"
            ).format(
                sql.SQL(", ").join(
                    sql.SQL("({}, (SELECT count(*) FROM pg_catalog.{} WHERE oid >= {}))").format(
                        sql.Literal(catalog),
                        sql.Identifier(catalog),
                        sql.Literal(_FIRST_NORMAL_OID),
                    )
                    for catalog in catalogs
                )
            )
        row = conn.execute(sql.SQL(_FINGERPRINT).format(objects=self._objects)).fetchone()
        assert row is not None
        return str(row[0])

    def _drop(self, name: str) -> None:
        try:
            self.server.drop_database(name)
        except Exception as exc:  # a leftover database on a throwaway server is harmless
            warnings.warn(f"could not drop test database {name}: {exc}", stacklevel=1)
