"""Throwaway PostgreSQL and Redis servers for tests.

Each server runs on a free loopback port with its files in a fresh temporary folder, and
``stop()`` kills it and removes that folder. PostgreSQL refuses to run as root, so when the
tests run as root (as on CI) ``initdb`` and ``postgres`` run as the ``postgres`` system user,
which owns the temporary folder; the user is created when it does not exist.

Nothing here depends on pytest: ``with PostgresServer() as pg: ...`` works in a script too.
"""

from __future__ import annotations

import abc
import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import psycopg
import redis
from psycopg import sql

LOOPBACK = "127.0.0.1"
POSTGRES_USER = "postgres"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
PORT_ATTEMPTS = 3

# Environment variables that point to other binaries than the ones found by default.
PG_BINDIR_ENV = "CHATOPS_TEST_PG_BINDIR"
REDIS_SERVER_ENV = "CHATOPS_TEST_REDIS_SERVER"

_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_PG_ENV_VARS = ("PGDATA", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGOPTIONS")


class ServerUnavailable(RuntimeError):
    """The server's binaries are missing, or the server did not start."""


def free_port() -> int:
    """A TCP port on the loopback address that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _is_root() -> bool:
    return os.geteuid() == 0


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/15/bin -> (15,); non-numeric names sort first.
    parts = re.findall(r"\d+", path.parent.name)
    return tuple(int(part) for part in parts) or (-1,)


def find_postgres_bindir() -> Path:
    """The folder with ``initdb`` and ``postgres``: the newest /usr/lib/postgresql/*/bin,
    else ``pg_config --bindir``, else the PATH. ``$CHATOPS_TEST_PG_BINDIR`` overrides."""
    candidates: list[Path] = []
    override = os.environ.get(PG_BINDIR_ENV)
    if override:
        candidates.append(Path(override))
    candidates.extend(
        sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    )
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
            if out:
                candidates.append(Path(out))
    on_path = shutil.which("postgres")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if (bindir / "postgres").is_file() and (bindir / "initdb").is_file():
            return bindir
    raise ServerUnavailable(
        "PostgreSQL server binaries (initdb, postgres) not found in /usr/lib/postgresql/*/bin, "
        f"`pg_config --bindir` or PATH. Install the Debian package `postgresql` "
        f"(scripts/test does) or set ${PG_BINDIR_ENV}."
    )


def find_redis_server() -> Path:
    """The ``redis-server`` binary (``$CHATOPS_TEST_REDIS_SERVER`` overrides)."""
    override = os.environ.get(REDIS_SERVER_ENV)
    found = override or shutil.which("redis-server")
    if not found:
        for path in ("/usr/bin/redis-server", "/usr/sbin/redis-server"):
            if os.access(path, os.X_OK):
                found = path
                break
    if not found or not os.access(found, os.X_OK):
        raise ServerUnavailable(
            "redis-server not found on PATH. Install the Debian package `redis-server` "
            f"(scripts/test does) or set ${REDIS_SERVER_ENV}."
        )
    return Path(found)


def _ensure_postgres_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(POSTGRES_USER)
    except KeyError:
        pass
    subprocess.run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            POSTGRES_USER,
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return pwd.getpwnam(POSTGRES_USER)


def _traversable_by_others(path: Path) -> bool:
    for part in (path, *path.parents):
        if not os.stat(part).st_mode & stat.S_IXOTH:
            return False
    return True


def _temp_root() -> str:
    """Where to make the server's folder: the usual temp dir, unless (as root) another user
    could not reach into it."""
    base = Path(tempfile.gettempdir()).resolve()
    if _is_root() and not _traversable_by_others(base):
        return "/tmp"
    return str(base)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _stop_process(proc: subprocess.Popen[bytes] | None, first_signal: int) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(first_signal)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=STOP_TIMEOUT_S)


class _ThrowawayServer(abc.ABC):
    """What the throwaway servers share: a child process on a free loopback port, its log and
    its temporary folder. A server says how to run it on a given port (`_argv`) and how to
    tell it answers (`_answers`); starting it, trying another port when that one was taken,
    and stopping it are written here once."""

    # Its name in messages, and the name of its temporary folder and log.
    title: str = "server"
    kind: str = "server"
    # Run as the ``postgres`` system user when the tests run as root (the server refuses root).
    runs_as_postgres: bool = False
    # The signal that stops the server quickly and cleanly.
    stop_signal: int = signal.SIGTERM
    # The signal for a server that did not come up.
    abort_signal: int = signal.SIGKILL

    def __init__(self) -> None:
        self.port: int | None = None
        self.tmpdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._run_as: dict[str, Any] = {}

    @property
    def log_path(self) -> Path:
        if self.tmpdir is None:
            raise ServerUnavailable(f"{self.title} is not running")
        return self.tmpdir / f"{self.kind}.log"

    @abc.abstractmethod
    def _argv(self, port: int) -> Sequence[str | Path]:
        """The command that runs the server on `port`."""

    @abc.abstractmethod
    def _answers(self) -> bool:
        """One attempt to reach the running server: does it answer?"""

    def _prepare(self) -> None:  # noqa: B027 (a hook: most servers need nothing)
        """What must be done once before the server first starts (its folder and log exist)."""

    def _env(self) -> dict[str, str] | None:
        return None  # the tests' own environment

    def start(self) -> Self:
        """Start the server and wait until it answers."""
        if self._proc is not None:
            return self
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f"chatops-{self.kind}-", dir=_temp_root()))
        atexit.register(self.stop)
        try:
            if self.runs_as_postgres and _is_root():
                user = _ensure_postgres_user()
                os.chown(self.tmpdir, user.pw_uid, user.pw_gid)
                self._run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
            self._log = open(self.log_path, "ab")  # closed in stop()
            self._prepare()
            self._start_on_free_port()
        except BaseException:
            self.stop()
            raise
        return self

    def _popen(self, argv: Sequence[str | Path]) -> subprocess.Popen[bytes]:
        assert self.tmpdir is not None and self._log is not None
        return subprocess.Popen(
            [str(arg) for arg in argv],
            cwd=self.tmpdir,
            env=self._env(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **self._run_as,
        )

    def _start_on_free_port(self, *, port: int | None = None) -> None:
        """Run the server on `port`, else on a free port, and wait until it answers. Another
        process may take a free port before the server binds it: then try another one."""
        last_error = ""
        for _ in range(PORT_ATTEMPTS):
            candidate = port or free_port()
            argv = self._argv(candidate)
            self._proc = self._popen(argv)
            self.port = candidate
            if self._wait_ready():
                return
            code = self._proc.poll()
            last_error = (
                f"{Path(argv[0]).name} exited with {code}" if code is not None else "timed out"
            )
            _stop_process(self._proc, self.abort_signal)
            self._proc = None
            self.port = None
            if code is None:
                break  # a hang, not a port clash: do not try again
        raise ServerUnavailable(
            f"{self.title} did not start ({last_error}); log {self.log_path}:\n"
            f"{_tail(self.log_path)}"
        )

    def _wait_ready(self) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            if self._answers():
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        """Kill the server and remove its files. Safe to call more than once."""
        atexit.unregister(self.stop)
        _stop_process(self._proc, self.stop_signal)
        self._proc = None
        self.port = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class PostgresServer(_ThrowawayServer):
    """A throwaway PostgreSQL cluster on a free loopback port, trust auth, superuser
    ``postgres``. Durability is off (fsync, synchronous_commit, full_page_writes)."""

    title = "PostgreSQL"
    kind = "postgres"
    runs_as_postgres = True
    stop_signal = signal.SIGINT  # PostgreSQL's "fast" shutdown: quick with fsync off
    abort_signal = signal.SIGQUIT  # immediate shutdown: the postmaster ends its children

    def __init__(
        self,
        *,
        bindir: Path | None = None,
        max_connections: int = 200,
        settings: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.bindir: Path = bindir or find_postgres_bindir()
        self.max_connections = max_connections
        # Extra `-c name=value` settings (shared_preload_libraries=pg_stat_statements...).
        self.settings = dict(settings or {})

    # -- addresses ---------------------------------------------------------------------------

    @property
    def dsn(self) -> str:
        """DSN of the ``postgres`` maintenance database."""
        return self.dsn_for("postgres")

    def dsn_for(self, dbname: str) -> str:
        if self.port is None:
            raise ServerUnavailable("PostgreSQL server is not running")
        return f"postgresql://{POSTGRES_USER}@{LOOPBACK}:{self.port}/{dbname}"

    @property
    def data_dir(self) -> Path:
        if self.tmpdir is None:
            raise ServerUnavailable("PostgreSQL server is not running")
        return self.tmpdir / "data"

    # -- lifecycle ---------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _PG_ENV_VARS}
        env["LC_ALL"] = "C"
        env.pop("LANG", None)
        return env

    def _prepare(self) -> None:
        """initdb: the cluster's files, made once; `resume` starts on them again."""
        proc = self._popen(
            [
                self.bindir / "initdb",
                "--pgdata",
                self.data_dir,
                "--auth=trust",
                "--username",
                POSTGRES_USER,
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ]
        )
        try:
            code = proc.wait(timeout=START_TIMEOUT_S * 2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = -1
        if code != 0:
            raise ServerUnavailable(
                f"initdb failed (exit {code}); log {self.log_path}:\n{_tail(self.log_path)}"
            )

    def pause(self) -> None:
        """Stop the postmaster (a database outage), keeping its data and port for `resume`."""
        _stop_process(self._proc, self.stop_signal)
        self._proc = None

    def resume(self) -> None:
        """Start the postmaster again on the same port and data: the outage is over."""
        if self._proc is None:
            self._start_on_free_port(port=self.port)

    def _argv(self, port: int) -> list[str | Path]:
        assert self.tmpdir is not None
        return [
            self.bindir / "postgres",
            "-D",
            self.data_dir,
            "-p",
            str(port),
            "-h",
            LOOPBACK,
            "-k",
            self.tmpdir,
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            f"max_connections={self.max_connections}",
            *[arg for k, v in self.settings.items() for arg in ("-c", f"{k}={v}")],
        ]

    def _answers(self) -> bool:
        try:
            with psycopg.connect(self.dsn, connect_timeout=2, autocommit=True) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    def create_database(self, name: str) -> str:
        """Create an empty database and return its DSN."""
        if not _DB_NAME.match(name):
            raise ValueError(f"not a plain database name: {name!r}")
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.dsn_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, ending any session still connected to it."""
        if not _DB_NAME.match(name):
            raise ValueError(f"not a plain database name: {name!r}")
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


class RedisServer(_ThrowawayServer):
    """A throwaway redis-server on a free loopback port, no persistence."""

    title = "Redis"
    kind = "redis"

    def __init__(self, *, binary: Path | None = None, databases: int = 64) -> None:
        super().__init__()
        self.binary: Path = binary or find_redis_server()
        self.databases = databases

    @property
    def url(self) -> str:
        return self.url_for(0)

    def url_for(self, db: int) -> str:
        if self.port is None:
            raise ServerUnavailable("Redis server is not running")
        if not 0 <= db < self.databases:
            raise ValueError(f"Redis DB {db} out of range 0..{self.databases - 1}")
        return f"redis://{LOOPBACK}:{self.port}/{db}"

    def _argv(self, port: int) -> list[str | Path]:
        assert self.tmpdir is not None
        return [
            self.binary,
            "--port",
            str(port),
            "--bind",
            LOOPBACK,
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            self.tmpdir,
            "--databases",
            str(self.databases),
        ]

    def client(self, db: int = 0) -> redis.Redis:
        """A synchronous client (for setup and teardown; tests use redis.asyncio)."""
        return redis.Redis.from_url(self.url_for(db), socket_timeout=5, socket_connect_timeout=2)

    def _answers(self) -> bool:
        try:
            with self.client() as conn:
                return bool(conn.ping())
        except redis.RedisError:
            return False

    def flushdb(self, db: int) -> None:
        with self.client(db) as conn:
            conn.flushdb()

    def kill(self) -> None:
        """Stop redis-server (SIGKILL: every client sees its connection drop) and keep its
        port and directory for `restart`."""
        _stop_process(self._proc, signal.SIGKILL)
        self._proc = None

    def restart(self) -> None:
        """Start redis-server again on its port, empty (no persistence): a Redis restart."""
        assert self.port is not None and self._proc is None, "kill() it first"
        self._start_on_free_port(port=self.port)
