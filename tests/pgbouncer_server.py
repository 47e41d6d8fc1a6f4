"""A throwaway PgBouncer in front of a throwaway PostgreSQL (tests/servers.py), for tests.

Transaction pooling by default, the mode many teams run: a client's transactions may each run
on a different server connection, so nothing of a session (prepared statements, SET, LISTEN)
survives from one transaction to the next. PgBouncer refuses to run as root, so as root it
runs as the ``postgres`` system user, like PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import psycopg

from tests.servers import (
    LOOPBACK,
    POSTGRES_USER,
    PostgresServer,
    ServerUnavailable,
    _ThrowawayServer,
)

PGBOUNCER_ENV = "CHATOPS_TEST_PGBOUNCER"


def find_pgbouncer() -> Path:
    """The ``pgbouncer`` binary (``$CHATOPS_TEST_PGBOUNCER`` overrides)."""
    found = os.environ.get(PGBOUNCER_ENV) or shutil.which("pgbouncer")
    if not found and os.access("/usr/sbin/pgbouncer", os.X_OK):
        found = "/usr/sbin/pgbouncer"
    if not found or not os.access(found, os.X_OK):
        raise ServerUnavailable(
            "pgbouncer not found. Install the Debian package `pgbouncer` "
            f"(scripts/test does) or set ${PGBOUNCER_ENV}."
        )
    return Path(found)


class PgBouncerServer(_ThrowawayServer):
    """PgBouncer on a free loopback port, trust auth, every database of `postgres` behind it."""

    title = "PgBouncer"
    kind = "pgbouncer"
    runs_as_postgres = True
    stop_signal = signal.SIGINT  # PgBouncer's "safe shutdown" waits for clients: SIGINT is quick

    def __init__(
        self,
        postgres: PostgresServer,
        *,
        pool_mode: str = "transaction",
        settings: dict[str, str] | None = None,
        binary: Path | None = None,
    ) -> None:
        super().__init__()
        self.postgres = postgres
        self.pool_mode = pool_mode
        self.settings = dict(settings or {})
        self.binary: Path = binary or find_pgbouncer()

    def dsn_for(self, dbname: str) -> str:
        if self.port is None:
            raise ServerUnavailable("PgBouncer is not running")
        return f"postgresql://{POSTGRES_USER}@{LOOPBACK}:{self.port}/{dbname}"

    def through(self, postgres_dsn: str) -> str:
        """`postgres_dsn` (a DSN of the PostgreSQL behind) by way of PgBouncer."""
        return self.dsn_for(postgres_dsn.rsplit("/", 1)[1])

    def _write_config(self, port: int) -> Path:
        assert self.tmpdir is not None and self.postgres.port is not None
        (self.tmpdir / "userlist.txt").write_text(f'"{POSTGRES_USER}" ""\n')
        settings = {
            "listen_addr": LOOPBACK,
            "listen_port": str(port),
            "unix_socket_dir": "",
            "auth_type": "trust",
            "auth_file": str(self.tmpdir / "userlist.txt"),
            "pool_mode": self.pool_mode,
            "default_pool_size": "20",
            "max_client_conn": "500",
            "server_reset_query": "DISCARD ALL",
            "admin_users": POSTGRES_USER,  # the console (database `pgbouncer`): see admin()
            **self.settings,
        }
        lines = [
            "[databases]",
            f"* = host={LOOPBACK} port={self.postgres.port}",
            "[pgbouncer]",
            *(f"{name} = {value}" for name, value in settings.items()),
        ]
        path = self.tmpdir / "pgbouncer.ini"
        path.write_text("\n".join(lines) + "\n")
        return path

    def _argv(self, port: int) -> list[str | Path]:
        return [self.binary, self._write_config(port)]

    def admin(self, command: str) -> None:
        """Run a command of PgBouncer's console (KILL, RESUME, RECONNECT...)."""
        # The console speaks only the simple query protocol: no parameters, not prepared.
        with psycopg.connect(self.dsn_for("pgbouncer"), autocommit=True) as conn:
            psycopg.ClientCursor(conn).execute(command)

    def forget(self, dbname: str) -> None:
        """Close every server connection to `dbname` now (its clients' too): a test's
        database is reused, and its sessions ended behind PgBouncer's back."""
        self.admin(f"KILL {dbname}")
        self.admin(f"RESUME {dbname}")

    def _answers(self) -> bool:
        try:
            with psycopg.connect(self.dsn_for("postgres"), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True
