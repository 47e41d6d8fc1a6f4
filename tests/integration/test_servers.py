"""The throwaway PostgreSQL, Redis and PgBouncer servers the other tests stand on."""

from __future__ import annotations

import socket

import psycopg
import pytest
import redis.asyncio as aioredis

from tests import monitoring, servers
from tests.monitoring import AlertmanagerServer
from tests.pgbouncer_server import PgBouncerServer
from tests.servers import LOOPBACK, PostgresServer, RedisServer, free_port


@pytest.mark.postgres
def test_postgres_accepts_connections(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute("SELECT version()").fetchone()
    assert row is not None
    assert row[0].startswith("PostgreSQL ")


@pytest.mark.postgres
def test_postgres_server_runs_on_loopback_with_test_settings(
    postgres_server: PostgresServer,
) -> None:
    assert postgres_server.dsn == f"postgresql://postgres@127.0.0.1:{postgres_server.port}/postgres"
    with psycopg.connect(postgres_server.dsn) as conn:
        settings: dict[str, str] = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
                (["fsync", "max_connections", "listen_addresses", "server_encoding"],),
            ).fetchall()
        )
    assert settings == {
        "fsync": "off",
        "max_connections": "200",
        "listen_addresses": "127.0.0.1",
        "server_encoding": "UTF8",
    }


@pytest.mark.postgres
def test_each_test_database_is_fresh_and_empty(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        dbname = conn.execute("SELECT current_database()").fetchone()
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    assert dbname is not None and dbname[0].startswith("test_")
    assert tables == (0,)


@pytest.mark.postgres
def test_databases_are_isolated(postgres_server: PostgresServer, postgres_url: str) -> None:
    other_url = postgres_server.create_database("test_isolation_other")
    try:
        with psycopg.connect(postgres_url) as conn:
            conn.execute("CREATE TABLE incidents (id int PRIMARY KEY, title text)")
            conn.execute("INSERT INTO incidents VALUES (1, 'db down')")
        with psycopg.connect(other_url) as conn:
            found = conn.execute("SELECT to_regclass('public.incidents')").fetchone()
            assert found == (None,)
            conn.execute("CREATE TABLE incidents (id int PRIMARY KEY, title text)")
            count = conn.execute("SELECT count(*) FROM incidents").fetchone()
            assert count == (0,)
        with psycopg.connect(postgres_url) as conn:
            titles = conn.execute("SELECT title FROM incidents").fetchall()
            assert titles == [("db down",)]
    finally:
        postgres_server.drop_database("test_isolation_other")


@pytest.mark.postgres
def test_lock_and_activity_views_are_readable(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as holder, psycopg.connect(postgres_url) as watcher:
        holder.execute("SELECT pg_advisory_lock(4242)")
        holder_pid = holder.info.backend_pid

        locks = watcher.execute(
            "SELECT pid, granted FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242"
        ).fetchall()
        assert locks == [(holder_pid, True)]

        activity = watcher.execute(
            "SELECT datname, state, query FROM pg_stat_activity WHERE pid = %s", (holder_pid,)
        ).fetchone()
        assert activity is not None
        datname, _state, query = activity
        assert datname == postgres_url.rsplit("/", 1)[1]
        assert "pg_advisory_lock" in query
        watcher.rollback()
        holder.rollback()


@pytest.mark.postgres
async def test_postgres_async_connection(postgres_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        cur = await conn.execute("SELECT 1 + 1")
        assert await cur.fetchone() == (2,)


@pytest.mark.redis
async def test_redis_ping_set_get(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        assert await client.ping() is True
        assert await client.set("incident:1:title", "db down") is True
        assert await client.get("incident:1:title") == "db down"
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_each_test_gets_an_empty_redis_db(redis_server: RedisServer, redis_url: str) -> None:
    assert redis_url.startswith(f"redis://127.0.0.1:{redis_server.port}/")
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert await client.dbsize() == 0
        await client.set("leftover", "1")
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_redis_db_is_clean_after_an_earlier_test(
    redis_server: RedisServer, redis_url: str
) -> None:
    # The previous test left a key in its DB; this one must not see it.
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert await client.exists("leftover") == 0
    finally:
        await client.aclose()
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"


def _taken_first(monkeypatch: pytest.MonkeyPatch, taken: int) -> None:
    """`free_port` hands out `taken` once, as when another process binds it in between."""
    ports = iter([taken])
    monkeypatch.setattr(servers, "free_port", lambda: next(ports, None) or free_port())


@pytest.mark.redis
def test_a_redis_whose_port_was_taken_starts_on_another(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as holder:
        holder.bind((LOOPBACK, 0))  # not listening: a probe would wait on it, not fail
        taken = holder.getsockname()[1]
        _taken_first(monkeypatch, taken)
        with RedisServer() as server:
            assert server.port not in (None, taken)
            assert server.client().ping()
            assert b"Address already in use" in server.log_path.read_bytes()


@pytest.mark.postgres
def test_a_pgbouncer_whose_port_was_taken_starts_on_another(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as holder:
        holder.bind((LOOPBACK, 0))  # not listening: a probe would wait on it, not fail
        taken = holder.getsockname()[1]
        _taken_first(monkeypatch, taken)
        with PgBouncerServer(postgres_server) as server:
            assert server.port not in (None, taken)
            with psycopg.connect(server.dsn_for("postgres")) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)


def test_an_alertmanager_whose_port_was_taken_starts_on_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as holder:
        holder.bind((LOOPBACK, 0))  # not listening: a probe would wait on it, not fail
        taken = holder.getsockname()[1]
        ports = iter([taken])
        monkeypatch.setattr(monitoring, "free_port", lambda: next(ports, None) or free_port())
        with AlertmanagerServer() as server:
            assert server.port != taken
            assert server.alerts() == []
            assert "address already in use" in server.log()
