"""A catalogued PostgreSQL reached through PgBouncer (transaction mode), which refuses the
startup `options` that carry the session's limits: the limits are set per statement."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.catalog import PostgresTarget
from bot.targets.errors import TargetError
from bot.targets.postgres import PostgresClient
from tests.pgbouncer_server import PgBouncerServer

LIMITS = (
    "SELECT current_setting('statement_timeout') AS statement_timeout,"
    " current_setting('lock_timeout') AS lock_timeout,"
    " current_setting('transaction_read_only') AS read_only"
)


@pytest.fixture
def shop_db(
    pgbouncer_server: PgBouncerServer, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[PostgresClient]:
    monkeypatch.setenv("SHOP_DB_URL", pgbouncer_server.through(postgres_url))
    yield PostgresClient(PostgresTarget.model_validate({"dsn_env": "SHOP_DB_URL", "timeout": 3}))
    pgbouncer_server.forget(postgres_url.rsplit("/", 1)[1])


async def test_read_only_session_keeps_its_limits_through_pgbouncer(
    shop_db: PostgresClient,
) -> None:
    async with shop_db.session() as session:
        for _ in range(7):  # more than psycopg's prepare threshold: nothing is prepared
            assert await session.fetchone(LIMITS) == {
                "statement_timeout": "3s",
                "lock_timeout": "3s",
                "read_only": "on",
            }
        with pytest.raises(TargetError, match="read-only transaction"):
            await session.execute("CREATE TABLE written (n integer)")
        assert await session.fetchone("SELECT 1 AS one") == {"one": 1}  # rolled back, usable


async def test_writing_session_through_pgbouncer_writes_within_limits(
    shop_db: PostgresClient,
) -> None:
    async with shop_db.session(read_only=False) as session:
        await session.execute("CREATE TABLE written (n integer)")
        await session.execute("INSERT INTO written VALUES (%s)", (1,))
        assert await session.fetchone("SELECT count(*) AS n FROM written") == {"n": 1}
        limits = await session.fetchone(LIMITS)
    assert limits == {"statement_timeout": "3s", "lock_timeout": "3s", "read_only": "off"}
