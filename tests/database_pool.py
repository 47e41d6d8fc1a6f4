"""Empty test databases handed out without paying `CREATE DATABASE` for each test.

`CREATE DATABASE` copies template1 and costs 0.1-0.25 s on the throwaway server; about 200
tests each needed one. A database a test has finished with is instead emptied for the next
test: its sessions are ended, every schema is dropped and `public` is made again exactly as
template1 has it. Then it is compared with a brand-new database (`_FINGERPRINT`: every object
made after initdb, the schemas with their owners, rights and comments, the database's own
settings, rights and shared dependencies, prepared transactions, replication slots). Anything
that differs -- or any step that fails -- and the database is dropped and a new one created,
as before. Roles are server-wide, so a test's roles outlived its database before too.

What a reused database does not start from zero: its cumulative statistics (pg_stat_database,
pg_stat_statements entries under its oid). No test reads those for its own database.
"""

from __future__ import annotations

import itertools
import time
import warnings

import psycopg
from psycopg import sql

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
  'objects', ({objects}),
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
  'slots', (SELECT count(*) FROM pg_replication_slots WHERE database = current_database())
)::text
"""

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
            self._pristine = self._fingerprint(name)
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
        if self._pristine is None:
            return False
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
        with psycopg.connect(self.server.dsn_for(name), autocommit=True) as conn:
            conn.execute(_RESET)
        return self._fingerprint(name) == self._pristine

    def _fingerprint(self, name: str) -> str:
        with psycopg.connect(self.server.dsn_for(name), autocommit=True) as conn:
            catalogs = [row[0] for row in conn.execute(_CATALOGS).fetchall()]
            objects = sql.SQL(" + ").join(
                sql.SQL("(SELECT count(*) FROM pg_catalog.{} WHERE oid >= {})").format(
                    sql.Identifier(catalog), sql.Literal(_FIRST_NORMAL_OID)
                )
                for catalog in catalogs
            )
            row = conn.execute(sql.SQL(_FINGERPRINT).format(objects=objects)).fetchone()
        assert row is not None
        return str(row[0])

    def _drop(self, name: str) -> None:
        try:
            self.server.drop_database(name)
        except Exception as exc:  # a leftover database on a throwaway server is harmless
            warnings.warn(f"could not drop test database {name}: {exc}", stacklevel=1)
