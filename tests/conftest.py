"""Shared pytest fixtures.

Keep each group of fixtures in its own marked block.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest

from tests.aws import FAKE_CREDENTIALS, MotoServer
from tests.database_pool import DatabasePool, run_migrations
from tests.fake_kubernetes import FakeKubernetes
from tests.pgbouncer_server import PgBouncerServer
from tests.servers import PostgresServer, RedisServer, ServerUnavailable

# ============================================================================================
# Throwaway servers (PostgreSQL, Redis) -- see tests/servers.py
#
#   postgres_server (session)  a PostgresServer, started on first use, stopped at session end
#   postgres_pool   (session)  a DatabasePool on it (tests/database_pool.py)
#   postgres_url    (function) DSN of an empty database `test_<n>` on it that no one else uses
#                              during the test: new, or one an earlier test used, emptied and
#                              checked to match a new one object for object (else dropped and
#                              a new one made); its cumulative statistics are not reset
#   migrated_postgres_url (function) the same, but migrated to the newest schema (holding
#                              only what the migrations insert): a used one of the same schema
#                              emptied (DELETE) and checked, else an empty one migrated.
#                              For fixtures whose first step is `migrate`; a test that asks for
#                              postgres_url itself gets a different database from this one
#   pgbouncer_server (session) a PgBouncerServer (tests/pgbouncer_server.py): transaction
#                              pooling in front of postgres_server
#   pgbouncer_url   (function) migrated_postgres_url's database by way of pgbouncer_server
#   own_postgres    (function) a PostgresServer no other test uses while this one runs, for
#                              tests that stop it (`pause`) and start it again (`resume`): one
#                              for the session (initdb, start and removal cost 1-2 s), given
#                              back running with the test's databases dropped
#   redis_server    (session)  a RedisServer, started on first use, stopped at session end
#   redis_url       (function) redis://127.0.0.1:PORT/<db>: a DB number of its own, flushed
#
#   migrated_sqlite (session)  factory: migrated_sqlite(path) puts a SQLite database migrated
#                              to the newest schema at `path` (a copy of one migrated once per
#                              session: migrating costs ~40 ms) and returns its sqlite:/// URL
#
# Missing binaries or a server that will not start FAIL the test: never skip, since a skipped
# database test hides a broken CI.
# ============================================================================================

_redis_numbers = itertools.count()

_Server = TypeVar("_Server", PostgresServer, RedisServer)


def _start_or_fail(server_class: type[_Server], kind: str) -> _Server:
    error = ""
    try:
        return server_class().start()
    except ServerUnavailable as exc:
        error = str(exc)
    pytest.fail(f"cannot start the throwaway {kind} server: {error}", pytrace=False)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = _start_or_fail(PostgresServer, "PostgreSQL")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_pool(postgres_server: PostgresServer) -> Iterator[DatabasePool]:
    pool = DatabasePool(postgres_server)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, postgres_pool: DatabasePool) -> Iterator[str]:
    name = postgres_pool.take()
    yield postgres_server.dsn_for(name)
    postgres_pool.give_back(name)


@pytest.fixture
def migrated_postgres_url(
    postgres_server: PostgresServer, postgres_pool: DatabasePool
) -> Iterator[str]:
    name = postgres_pool.take_migrated()
    yield postgres_server.dsn_for(name)
    postgres_pool.give_back(name)


@pytest.fixture(scope="session")
def _outage_postgres_server() -> Iterator[PostgresServer]:
    server = _start_or_fail(PostgresServer, "PostgreSQL")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_postgres(_outage_postgres_server: PostgresServer) -> Iterator[PostgresServer]:
    server = _outage_postgres_server
    server.resume()  # should a test before have left it stopped
    yield server
    server.resume()
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        made = conn.execute(
            "SELECT datname FROM pg_database WHERE datname NOT IN ('postgres', 'template0',"
            " 'template1')"
        ).fetchall()
    for (name,) in made:
        server.drop_database(name)


@pytest.fixture(scope="session")
def pgbouncer_server(postgres_server: PostgresServer) -> Iterator[PgBouncerServer]:
    error = ""
    try:
        server = PgBouncerServer(postgres_server).start()
    except ServerUnavailable as exc:
        error = str(exc)
    if error:
        pytest.fail(f"cannot start the throwaway PgBouncer: {error}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pgbouncer_url(pgbouncer_server: PgBouncerServer, migrated_postgres_url: str) -> Iterator[str]:
    yield pgbouncer_server.through(migrated_postgres_url)
    pgbouncer_server.forget(migrated_postgres_url.rsplit("/", 1)[1])


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], str]:
    template = tmp_path_factory.mktemp("migrated-sqlite") / "template.db"
    run_migrations(f"sqlite:///{template}")  # closed after: the file holds it all (no -wal)

    def copy_to(path: Path) -> str:
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"

    return copy_to


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = _start_or_fail(RedisServer, "Redis")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    # Tests run one at a time, so cycling through the DB numbers and flushing the one handed
    # out gives each test an empty DB of its own. Pub/sub channels are server-wide, not per DB.
    db = next(_redis_numbers) % redis_server.databases
    redis_server.flushdb(db)
    return redis_server.url_for(db)


# ============================================================================================
# End of throwaway servers block.
# ============================================================================================


# ============================================================================================
# Doubles for the systems in the service catalog -- tests/aws.py, tests/fake_kubernetes.py
#
#   moto_server     (session)  moto's server as a process on a free loopback port
#   aws_env         (function) boto3's chain pointed at it (AWS_ENDPOINT_URL, fake keys),
#                              every moto service emptied first; yields the MotoServer
#   fake_kubernetes (function) a FakeKubernetes API server; KUBECONFIG points at it with
#                              context "test"; yields it (fill `.state`, read `.requests`)
# ============================================================================================


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    try:
        server = MotoServer().start()
    except ServerUnavailable as exc:
        pytest.fail(f"cannot start moto's server: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aws_env(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    moto_server.reset()
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_server


@pytest.fixture
def fake_kubernetes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKubernetes]:
    server = FakeKubernetes().start()
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig", context="test")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    try:
        yield server
    finally:
        server.stop()


# ============================================================================================
# End of catalog doubles block.
# ============================================================================================
