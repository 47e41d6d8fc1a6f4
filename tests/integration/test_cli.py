"""The real `chatops-bot` entry point, run as a subprocess the way an operator runs it.

Each test builds the child's environment from scratch, so Slack tokens or a DATABASE_URL in
the developer's shell never leak into a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import psycopg
import pytest

from bot import audit, outbox
from bot.audit import AuditLog, AuditRecord
from bot.clock import SystemClock
from bot.console.workspace import SlackDouble
from bot.policy import load_policy
from bot.slack.requests import SlackRequestSender, slash_command_body
from bot.store import create_store, migrate
from bot.store.migrate import available_migrations, pending_migrations
from tests.processes import listening_port

ROOT = Path(__file__).resolve().parents[2]
BUILT_IN_POLICY = ROOT / "bot" / "defaults" / "policy.yml"
EXAMPLE_POLICY = ROOT / "chatops.example.yml"
SIGNING_SECRET = "cli-test-signing-secret"
BOT_TOKEN = "xoxb-cli-test"
# Seconds: the store gives up on a database that is down after this, not 3 s (the default).
QUICK_OUTAGE = "0.5"


def _entry_point() -> str:
    beside_python = Path(sys.executable).parent / "chatops-bot"
    found = str(beside_python) if beside_python.exists() else shutil.which("chatops-bot")
    assert found, "the chatops-bot entry point is not installed (pip install -e .)"
    return found


def _env(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment: only what a fresh shell has, plus `extra`."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8"}
    env.update(extra)
    return env


@contextlib.contextmanager
def socket_closed_port() -> Iterator[int]:
    """A loopback port nothing listens on while the block runs (bound, never listening)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


def _cli(
    *args: str, cwd: Path, env: Mapping[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_entry_point(), *args],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# ----- configuration errors ----------------------------------------------------------------


def test_run_without_bot_token_exits_2_naming_it(tmp_path: Path) -> None:
    result = _cli("run", cwd=tmp_path, env=_env(tmp_path, SLACK_SIGNING_SECRET="s"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "SLACK_BOT_TOKEN" in lines[0] and "Traceback" not in result.stderr


def test_run_with_malformed_database_url_exits_2_naming_it(tmp_path: Path) -> None:
    env = _env(
        tmp_path,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET="s",
        DATABASE_URL="mysql://root@localhost/chatops",
    )
    result = _cli("run", cwd=tmp_path, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "DATABASE_URL" in lines[0]


def test_run_with_the_alerts_token_unset_exits_2_naming_it(tmp_path: Path) -> None:
    """The policy names ALERTS_TOKEN and the environment lacks it: start-up stops, as for
    paging's keys. The bot once started and answered every monitor's alert 503, seen only
    when an alert was missed."""
    policy = tmp_path / "policy.yml"
    policy.write_text(
        BUILT_IN_POLICY.read_text(encoding="utf-8") + "alerts:\n  token_env: ALERTS_TOKEN\n",
        encoding="utf-8",
    )
    env = _env(
        tmp_path,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET="s",
        DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
        CHATOPS_POLICY=str(policy),
        ALERTS_TOKEN=" \n",  # blank, as an empty Secret gives it
    )
    # Bounded: the old code started and served until killed.
    result = _cli("run", "--host", "127.0.0.1", "--port", "0", cwd=tmp_path, env=env, timeout=15)
    assert result.returncode == 2, result.stderr
    assert (
        "chatops-bot: ALERTS_TOKEN is not set (named by the policy's alerts.token_env)"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_run_on_a_port_already_taken_exits_2_naming_it(tmp_path: Path) -> None:
    """Another process on the port: one line naming the address, no traceback, and nothing
    left open behind it (an unclosed Slack client session was reported at exit)."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        env = _env(
            tmp_path,
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET="s",
            DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
        )
        result = _cli("run", "--host", "127.0.0.1", "--port", str(port), cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    assert f"chatops-bot: cannot listen on 127.0.0.1:{port}: Address already in use" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    assert "Unclosed" not in result.stderr
    # Nor Bolt's warnings that SLACK_BOT_TOKEN "will be unused" / "will be ignored" (the
    # client's token is that same token), said at every start before.
    assert "`token`" not in result.stderr, result.stderr


async def test_run_on_a_port_taken_starts_nothing_before_it_exits_2(tmp_path: Path) -> None:
    """Start-up started the outbox dispatcher and the reminders before it took the port: a
    notification left from the last run was taken up (and sent to Slack) by a process about
    to exit 2. The port is taken first now: the notification waits, Slack hears nothing
    (Socket Mode's connection included)."""
    database = tmp_path / "bot.db"
    store = create_store(f"sqlite:///{database}")
    await store.open()
    await migrate(store)
    async with store.transaction() as tx:
        await outbox.enqueue(tx, datetime.now(UTC), "left.over", {"n": 1}, lane="INC-1")
    await store.close()
    async with SlackDouble(bot_token=BOT_TOKEN) as slack:
        with socket.create_server(("127.0.0.1", 0)) as taken:
            port = taken.getsockname()[1]
            env = _env(
                tmp_path,
                SLACK_BOT_TOKEN=BOT_TOKEN,
                SLACK_SIGNING_SECRET="s",
                SLACK_APP_TOKEN="xapp-1-A0TEST-1-cli",
                SLACK_API_URL=slack.api_url,
                DATABASE_URL=f"sqlite:///{database}",
            )
            args = ("run", "--host", "127.0.0.1", "--port", str(port))
            result = await asyncio.to_thread(_cli, *args, cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    assert f"chatops-bot: cannot listen on 127.0.0.1:{port}: Address already in use" in (
        result.stderr
    )
    with contextlib.closing(sqlite3.connect(database)) as db:
        row = db.execute(
            "SELECT attempts, claimed_until, delivered_at, failed_at FROM outbox"
        ).fetchone()
    assert row == (0, None, None, None), "the outbox was worked on by a process exiting 2"
    assert [call.method for call in slack.calls] == []


def test_run_on_a_port_out_of_range_or_an_unknown_host_says_so_in_one_line(
    tmp_path: Path,
) -> None:
    """`--port 99999` ended in an OverflowError traceback; a host that does not resolve was
    "Unknown error -2"."""
    env = _env(
        tmp_path,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET="s",
        DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
    )
    result = _cli("run", "--port", "99999", cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[-1] == (
        "chatops-bot run: error: argument --port: 99999 is not a port (0-65535)"
    )
    unknown = _cli("run", "--host", "nosuchhost.invalid", "--port", "0", cwd=tmp_path, env=env)
    assert unknown.returncode == 2, unknown.stderr
    assert "chatops-bot: cannot listen on nosuchhost.invalid:0: " in unknown.stderr
    assert "Unknown error" not in unknown.stderr and "Traceback" not in unknown.stderr


def test_run_with_the_database_down_says_so_and_closes_what_it_opened(tmp_path: Path) -> None:
    with socket_closed_port() as port:
        env = _env(
            tmp_path,
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET="s",
            DATABASE_URL=f"postgresql://chatops@127.0.0.1:{port}/chatops",
            DATABASE_QUEUE_SECONDS=QUICK_OUTAGE,
        )
        result = _cli("run", "--host", "127.0.0.1", "--port", "0", cwd=tmp_path, env=env)
    assert result.returncode == 1, result.stderr
    assert "chatops-bot: PostgreSQL is unavailable" in result.stderr
    assert "Unclosed client session" not in result.stderr, result.stderr


@pytest.mark.parametrize("command", [["audit", "verify"], ["diagnose", "checkout"]])
def test_database_down_is_not_read_as_a_finding(tmp_path: Path, command: list[str]) -> None:
    """`audit verify` exits 1 for a broken chain and `diagnose` for a warning; with the
    database down both exited 1 too, so a cron job paged security for an outage."""
    with socket_closed_port() as port:
        env = _env(
            tmp_path,
            DATABASE_URL=f"postgresql://chatops@127.0.0.1:{port}/chatops",
            DATABASE_QUEUE_SECONDS=QUICK_OUTAGE,
        )
        result = _cli(*command, cwd=tmp_path, env=env)
    assert result.returncode == 5, result.stdout + result.stderr
    assert "chatops-bot: PostgreSQL is unavailable" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://x:hunter2@[bad",  # libpq cannot parse it
        "nonsense",
        "postgresql://host:notaport/db",  # parses, but no port
        "postgresql://app:hunter2@db/chatops?sslmod=require",  # a misspelt parameter
    ],
)
@pytest.mark.parametrize("command", [["migrate"], ["audit", "verify"]])
def test_malformed_database_url_is_one_line_and_exit_2(
    tmp_path: Path, url: str, command: list[str]
) -> None:
    """Before issue 7 the first and third were tried, logged pool warnings and exited 1."""
    result = _cli(*command, cwd=tmp_path, env=_env(tmp_path, DATABASE_URL=url), timeout=30)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("chatops-bot: DATABASE_URL is malformed: "), lines[0]
    assert "hunter2" not in result.stderr


def test_diagnose_without_a_service_names_only_what_is_missing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The checks are optional, yet `chatops-bot diagnose` said both were required."""
    from bot.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["diagnose"])
    assert exited.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.endswith("the following arguments are required: service"), error


@pytest.mark.parametrize(
    ("days", "said"),
    [
        ("0", "give a number of days from 1 to 366"),
        ("seven", "not a number: 'seven' (digits 0-9 only)"),
        ("７", "not a number: '７' (digits 0-9 only)"),  # int() read it as 7
    ],
)
def test_stats_days_out_of_range_is_a_usage_error_exiting_2(
    days: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`stats --days 0` exited 1, the status of a failure, where every other usage error of
    the CLI exits 2 (as the README lists)."""
    from bot.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["stats", "--days", days])
    assert exited.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error == f"chatops-bot stats: error: argument --days: {said}", error


def test_check_config_reports_a_bad_duration_with_its_location(tmp_path: Path) -> None:
    text = BUILT_IN_POLICY.read_text()
    good = "P1: {ack_within: 30m,"
    assert good in text, "the built-in policy changed shape; update this test"
    bad_file = tmp_path / "policy.yml"
    bad_file.write_text(text.replace(good, "P1: {ack_within: 30 minutes,"))
    line_no = next(
        n for n, line in enumerate(bad_file.read_text().splitlines(), 1) if "30 minutes" in line
    )

    result = _cli("check-config", str(bad_file), cwd=tmp_path, env=_env(tmp_path))
    assert result.returncode != 0
    problems = result.stderr.strip().splitlines()
    assert problems, result.stdout
    assert problems[0].startswith(
        f"{bad_file}:{line_no}: severities.P1.ack_within: invalid duration '30 minutes'"
    ), problems
    assert "Traceback" not in result.stderr

    # The same file named by CHATOPS_POLICY instead of an argument.
    by_env = _cli("check-config", cwd=tmp_path, env=_env(tmp_path, CHATOPS_POLICY=str(bad_file)))
    assert by_env.returncode != 0 and "severities.P1.ack_within" in by_env.stderr


def test_check_config_accepts_the_example_and_the_built_in_policy(tmp_path: Path) -> None:
    if EXAMPLE_POLICY.exists():
        example = _cli("check-config", str(EXAMPLE_POLICY), cwd=tmp_path, env=_env(tmp_path))
        assert example.returncode == 0, example.stderr
        assert "OK" in example.stdout
    built_in = _cli("check-config", cwd=tmp_path, env=_env(tmp_path))
    assert built_in.returncode == 0, built_in.stderr
    assert "<built-in policy>: OK" in built_in.stdout

    one = _policy_with_services(tmp_path, '  checkout:\n    http: [{url: "http://127.0.0.1:9/"}]\n')
    single = _cli("check-config", str(one), cwd=tmp_path, env=_env(tmp_path))
    assert single.returncode == 0, single.stderr
    assert "1 service)" in single.stdout  # not "1 services"


# ----- migrate and audit -------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/cli.db"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(params=["sqlite", "postgres"])
def migrated_database_url(
    request: pytest.FixtureRequest, tmp_path: Path, migrated_sqlite: Callable[[Path], str]
) -> str:
    """For the tests about what the bot wrote, not about migrating: an empty PostgreSQL
    database costs 0.15-0.3 s to migrate."""
    if request.param == "sqlite":
        return migrated_sqlite(tmp_path / "cli.db")
    return str(request.getfixturevalue("migrated_postgres_url"))


def test_migrate_applies_then_reports_up_to_date(tmp_path: Path, database_url: str) -> None:
    env = _env(tmp_path, DATABASE_URL=database_url)
    first = _cli("migrate", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("applied: 0001_initial")
    second = _cli("migrate", cwd=tmp_path, env=env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "database is up to date"


def test_a_tilde_in_a_sqlite_url_is_the_home_directory(tmp_path: Path) -> None:
    """`DATABASE_URL=sqlite:///~/x.db` made a directory named `~` where the bot ran, its
    database inside: not where the operator, or the next command run elsewhere, looked."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = _env(home, DATABASE_URL="sqlite:///~/chatops.db")
    migrated = _cli("migrate", cwd=work, env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert (home / "chatops.db").is_file()
    assert not (work / "~").exists()
    # A reading command finds that same database (it refuses one it never used).
    verified = _cli("audit", "verify", cwd=work, env=env)
    assert verified.returncode == 0, verified.stderr


async def _record_entries(database_url: str) -> None:
    store = create_store(database_url)
    await store.open()
    try:
        await migrate(store)
        log = AuditLog(store, SystemClock())
        for action, incident in (
            ("incident.declare", "INC-20260101-001"),
            ("incident.ack", "INC-20260101-001"),
            ("incident.declare", "INC-20260101-002"),
        ):
            await log.record(
                AuditRecord(
                    actor="U0ALICE",
                    action=action,
                    target=incident,
                    outcome="ok",
                    args={"title": "API down"},
                    incident_id=incident,
                )
            )
    finally:
        await store.close()


def _tamper(database_url: str, seq: int) -> None:
    """Edit one audit row behind the bot's back, as someone with database access could."""
    query = "UPDATE audit_log SET outcome = 'refused' WHERE seq = "
    if database_url.startswith("sqlite:"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            conn.execute(query + "?", (seq,))
    else:
        with psycopg.connect(database_url) as conn:
            conn.execute(query + "%s", (seq,))


async def test_audit_export_and_verify_detects_an_edited_row(
    tmp_path: Path, migrated_database_url: str
) -> None:
    database_url = migrated_database_url
    await _record_entries(database_url)
    env = _env(tmp_path, DATABASE_URL=database_url)

    exported = await asyncio.to_thread(_cli, "audit", "export", cwd=tmp_path, env=env)
    assert exported.returncode == 0, exported.stderr
    entries = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [e["seq"] for e in entries] == [1, 2, 3]
    assert entries[1]["action"] == "incident.ack" and entries[1]["hash"]
    assert entries[1]["prev_hash"] == entries[0]["hash"]
    only_one = await asyncio.to_thread(
        _cli, "audit", "export", "--incident", "INC-20260101-002", cwd=tmp_path, env=env
    )
    assert [json.loads(line)["seq"] for line in only_one.stdout.splitlines()] == [3]
    # Typed as people type it: the same entries, not an empty export that reads as "none".
    lower = await asyncio.to_thread(
        _cli, "audit", "export", "--incident", "inc-20260101-002", cwd=tmp_path, env=env
    )
    assert [json.loads(line)["seq"] for line in lower.stdout.splitlines()] == [3]
    malformed = await asyncio.to_thread(
        _cli, "audit", "export", "--incident", "20260101-002", cwd=tmp_path, env=env
    )
    assert malformed.returncode == 1 and malformed.stdout == ""
    assert "IDs look like INC-20261127-001" in malformed.stderr
    # Well formed, but no such incident: said, not an empty export with status 0.
    unknown = await asyncio.to_thread(
        _cli, "audit", "export", "--incident", "INC-20260101-099", cwd=tmp_path, env=env
    )
    assert (unknown.returncode, unknown.stdout) == (1, "")
    assert unknown.stderr == "chatops-bot: There is no incident INC-20260101-099.\n"

    verified = await asyncio.to_thread(_cli, "audit", "verify", cwd=tmp_path, env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "3 entries verified" in verified.stdout

    _tamper(database_url, 2)
    broken = await asyncio.to_thread(_cli, "audit", "verify", cwd=tmp_path, env=env)
    assert broken.returncode == 1
    assert "entry 2" in broken.stdout and "altered" in broken.stdout, broken.stdout


async def test_audit_export_into_a_reader_that_stops_early_ends_quietly(tmp_path: Path) -> None:
    """`chatops-bot audit export | head` printed a BrokenPipeError traceback, and the export's
    snapshot, left open, failed again on the closed database as the program ended."""
    database_url = f"sqlite:///{tmp_path}/audit.db"
    store = create_store(database_url)
    await store.open()
    try:
        await migrate(store)
        async with store.transaction() as tx:  # well past a pipe's buffer as JSON lines
            for n in range(3000):
                record = AuditRecord(
                    actor="U0ALICE",
                    action="incident.note",
                    target="-",
                    outcome="ok",
                    args={"n": n, "note": "x" * 200},
                )
                await audit.append(tx, datetime.now(UTC), record)
    finally:
        await store.close()
    env = _env(tmp_path, DATABASE_URL=database_url)

    def export_first_line() -> tuple[str, int, str]:
        process = subprocess.Popen(
            [_entry_point(), "audit", "export"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()  # the reader has what it wanted
        errors = process.stderr.read()
        return first, process.wait(timeout=60), errors

    first, status, errors = await asyncio.to_thread(export_first_line)
    assert json.loads(first)["seq"] == 1
    assert (status, errors) == (141, "")


def test_the_console_into_a_reader_that_stops_early_ends_quietly(tmp_path: Path) -> None:
    """`chatops-bot console < commands | head` ended in a BrokenPipeError traceback."""
    process = subprocess.Popen(
        [_entry_point(), "console", "--fresh"],
        cwd=tmp_path,
        env=_env(tmp_path),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdin and process.stdout and process.stderr
    first = process.stdout.readline()
    process.stdout.close()  # the reader has what it wanted
    process.stdin.write("/oncall\n" * 50 + ":quit\n")  # well past a pipe's buffer, answered
    process.stdin.close()
    errors = process.stderr.read()
    assert "chatops-bot console" in first
    assert (process.wait(timeout=60), errors) == (141, "")


async def test_audit_verify_is_ok_while_the_bot_writes(
    tmp_path: Path, migrated_database_url: str
) -> None:
    """`audit verify` reads one snapshot: before issue 7 it said BROKEN every time here."""
    database_url = migrated_database_url
    await _record_entries(database_url)
    store = create_store(database_url)
    await store.open()
    log = AuditLog(store, SystemClock())
    stop = asyncio.Event()
    written = 0

    async def write() -> None:
        nonlocal written
        while not stop.is_set():
            await log.record(
                AuditRecord(actor="U0BOB", action="incident.note", target="-", outcome="ok")
            )
            written += 1

    writer = asyncio.create_task(write())
    env = _env(tmp_path, DATABASE_URL=database_url)
    try:
        runs = []
        for _ in range(3):
            written_before = written
            runs.append(await asyncio.to_thread(_cli, "audit", "verify", cwd=tmp_path, env=env))
            assert written > written_before, "the bot wrote nothing during verify"
    finally:
        stop.set()
        await writer
        await store.close()
    for run in runs:
        assert run.returncode == 0, run.stdout + run.stderr
        assert run.stdout.startswith("audit log OK: ") and "entries verified" in run.stdout


@pytest.mark.parametrize(
    "command", [["audit", "verify"], ["audit", "export"], ["report", "INC-20260101-001"], ["stats"]]
)
def test_reading_commands_refuse_a_database_the_bot_never_used(
    tmp_path: Path, command: list[str]
) -> None:
    """A mistyped path (or the default `chatops.db` in the wrong directory) was created on
    the spot, and `audit verify` then said "audit log OK: 0 entries verified"."""
    missing = tmp_path / "typo" / "chatops.db"
    empty = tmp_path / "empty.db"
    empty.touch()  # a file, but no schema of the bot's
    for path in (missing, empty):
        env = _env(tmp_path, DATABASE_URL=f"sqlite:///{path}")
        result = _cli(*command, cwd=tmp_path, env=env, timeout=30)
        assert result.returncode == 2, (path, result.stdout, result.stderr)
        [line] = result.stderr.splitlines()
        assert "names a database chatops-bot has never used" in line, line
        assert "OK" not in result.stdout
    assert not missing.exists() and not missing.parent.exists()


@pytest.mark.parametrize(
    "command", [["audit", "verify"], ["report", "INC-20260101-001"], ["stats"]]
)
async def test_reading_commands_never_migrate_the_database(
    tmp_path: Path, database_url: str, command: list[str]
) -> None:
    """`audit`, `report` and `stats` only read, says the README, yet they applied every
    pending migration: an operator's newer CLI migrated production under the older bot,
    which then refused to start ("migrated by a newer version") at its next restart."""
    store = create_store(database_url)
    await store.open()
    try:
        await migrate(store, available_migrations()[:-1])  # the bot one version behind
        newest = available_migrations()[-1].label
        env = _env(tmp_path, DATABASE_URL=database_url)
        result = await asyncio.to_thread(_cli, *command, cwd=tmp_path, env=env)
        assert result.returncode == 2, result.stdout + result.stderr
        [line] = result.stderr.splitlines()
        assert f"lacks 1 migration(s) of this version of chatops-bot ({newest})" in line
        assert "changed nothing" in line and "`chatops-bot migrate`" in line
        assert await pending_migrations(store) == [newest]  # left as it was
    finally:
        await store.close()


def test_migrate_refuses_a_database_newer_than_the_code(tmp_path: Path, database_url: str) -> None:
    env = _env(tmp_path, DATABASE_URL=database_url)
    assert _cli("migrate", cwd=tmp_path, env=env).returncode == 0
    query = "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'next', 0)"
    if database_url.startswith("sqlite:"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            conn.execute(query)
    else:
        with psycopg.connect(database_url) as conn:
            conn.execute(query)
    refused = _cli("migrate", cwd=tmp_path, env=env)
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "9999_next" in lines[0] and "newer" in lines[0], refused.stderr


@pytest.mark.parametrize(
    "command", [["audit", "verify"], ["report", "INC-20260101-001"], ["stats"]]
)
def test_reading_commands_refuse_a_newer_database_with_exit_2(
    tmp_path: Path, command: list[str]
) -> None:
    """A database migrated by a newer bot made `audit verify` exit 1, its status for a
    broken chain; the README says the reading commands refuse such databases with 2."""
    path = tmp_path / "chatops.db"
    env = _env(tmp_path, DATABASE_URL=f"sqlite:///{path}")
    assert _cli("migrate", cwd=tmp_path, env=env).returncode == 0
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'next', 0)"
        )
    result = _cli(*command, cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    assert "9999_next" in line and "does not know" in line, line
    assert result.stdout == ""


def _migrated_sqlite(path: Path, *, behind: bool = False, ahead: bool = False) -> None:
    """`path` as a bot one version behind this one (`behind`) or ahead of it (`ahead`) left it."""

    async def make() -> None:
        store = create_store(f"sqlite:///{path}")
        await store.open()
        try:
            await migrate(store, available_migrations()[:-1] if behind else None)
        finally:
            await store.close()

    asyncio.run(make())
    if ahead:
        with sqlite3.connect(path) as conn:
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'next', 0)"
            )


def test_diagnose_never_migrates_a_database_a_bot_uses(tmp_path: Path) -> None:
    """`diagnose` migrated whatever DATABASE_URL named: a newer CLI pointed at the bot's
    database (for its REDIS_URL hold) migrated it under the older bot running on it. It
    records its run, so a new database still gets the schema."""
    policy = _policy_with_services(tmp_path, "  shop: {http: [{url: 'http://127.0.0.1:9/'}]}\n")
    path = tmp_path / "bot.db"
    _migrated_sqlite(path, behind=True)
    env = _env(tmp_path, DATABASE_URL=f"sqlite:///{path}", CHATOPS_POLICY=str(policy))
    result = _cli("diagnose", "shop", "--brief", cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    newest = available_migrations()[-1].label
    assert f"lacks 1 migration(s) of this version of chatops-bot ({newest})" in line
    assert result.stdout == ""
    with sqlite3.connect(path) as conn:
        versions = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    assert available_migrations()[-1].version not in versions  # left as it was

    new = _env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/new.db", CHATOPS_POLICY=str(policy))
    ran = _cli("diagnose", "shop", "--brief", cwd=tmp_path, env=new)
    assert ran.returncode == 3, ran.stdout + ran.stderr  # CRIT: nothing listens there


def test_diagnose_on_a_newer_database_exits_2_not_1_which_is_warn(tmp_path: Path) -> None:
    policy = _policy_with_services(tmp_path, "  shop: {http: [{url: 'http://127.0.0.1:9/'}]}\n")
    path = tmp_path / "bot.db"
    _migrated_sqlite(path, ahead=True)
    env = _env(tmp_path, DATABASE_URL=f"sqlite:///{path}", CHATOPS_POLICY=str(policy))
    result = _cli("diagnose", "shop", "--brief", cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    assert "9999_next" in line and "does not know" in line, line


# ----- run ---------------------------------------------------------------------------------


async def _serve(
    program: list[str], cwd: Path, env: dict[str, str]
) -> tuple[asyncio.subprocess.Process, int, bytes]:
    """`<program> run` on port 0, its output piped for the failure message: the process, the
    port its log says it was given, and what it wrote to stderr until then."""
    process = await asyncio.create_subprocess_exec(
        *program,
        "run",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    early = b""
    async with asyncio.timeout(60):
        while line := await process.stderr.readline():
            early += line
            if (port := listening_port(line.decode(errors="replace"))) is not None:
                return process, port, early
    raise AssertionError(f"the bot never said where it listens: {early.decode()}")


async def _stop(process: asyncio.subprocess.Process) -> tuple[bytes, bytes]:
    """Stop a served bot (SIGTERM) and return its output; never leave one behind, even when
    stopping hangs."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(process.communicate(), timeout=20)
    except TimeoutError:
        process.kill()
        raise


def _policy_with_services(folder: Path, services: str) -> Path:
    """The built-in policy with `services` (YAML lines under `services:`), as a file."""
    default = (ROOT / "bot" / "defaults" / "policy.yml").read_text()
    assert "services: {}\n" in default
    policy = folder / "policy.yml"
    policy.write_text(default.replace("services: {}\n", "services:\n" + services))
    return policy


async def _wait_healthy(url: str, process: asyncio.subprocess.Process) -> dict[str, object]:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            if process.returncode is not None:
                break
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        assert response.content_type == "application/json"
                        return dict(await response.json())
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    stderr = (await process.stderr.read()).decode() if process.stderr else ""
    raise AssertionError(f"the bot never became healthy: {stderr}")


async def test_run_serves_healthz_and_a_signed_declare_then_stops_cleanly(
    tmp_path: Path,
) -> None:
    async with SlackDouble(bot_token=BOT_TOKEN) as slack:
        env = _env(
            tmp_path,
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=slack.api_url,
            DATABASE_URL=f"sqlite:///{tmp_path}/run.db",
        )
        process, port, early = await _serve([_entry_point()], tmp_path, env)
        try:
            health = await _wait_healthy(f"http://127.0.0.1:{port}/healthz", process)
            assert health == {"ok": True, "store": "ok", "coordinator": "ok"}

            body = slash_command_body(
                text="declare P1 Checkout API returns 502",
                user_id="U0ALICE",
                channel_id="C0GENERAL",
                response_url=slack.new_response_url(channel="C0GENERAL", user_id="U0ALICE"),
            )
            async with SlackRequestSender(
                f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET
            ) as sender:
                assert (await sender.send(body)).status == 200
                forged = await sender.send(body, signature="v0=" + "0" * 64)
                assert forged.status == 401
            [reply] = await slack.wait_for_response(1, timeout=10)
            assert "Declared *INC-" in reply.payload["text"]
            posts = await slack.wait_for("chat.postMessage", 1, timeout=10)
            announce = load_policy(None).announce_channel  # the built-in policy's
            [announcement] = [p for p in posts if p.params.get("channel") == announce]
            assert "Checkout API returns 502" in announcement.params["text"]
        finally:
            _, stderr = await _stop(process)
        stderr = early + stderr
        assert process.returncode == 0, stderr.decode()
        assert "Traceback" not in stderr.decode()
        assert slack.violations == []
        # The server runs on uvloop (a dependency, except on Windows): this test is its
        # request, declaration and shutdown on that loop.
        assert "event loop: uvloop.Loop" in stderr.decode()


async def _declare_and_signal(
    tmp_path: Path,
    program: list[str],
    *,
    then: signal.Signals,
    before: signal.Signals | None = None,
) -> tuple[int | None, str, list[str]]:
    """`program run` on SQLite: `before` sent once it is healthy (and healthy again after),
    one signed declaration answered 200, then `then` sent at once (the declaration may be
    under way). Its exit status, its log and the titles of the incidents it stored."""
    database = tmp_path / "run.db"
    async with SlackDouble(bot_token=BOT_TOKEN) as slack:
        env = _env(
            tmp_path,
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=slack.api_url,
            DATABASE_URL=f"sqlite:///{database}",
        )
        process, port, early = await _serve(program, tmp_path, env)
        health = f"http://127.0.0.1:{port}/healthz"
        try:
            await _wait_healthy(health, process)
            if before is not None:
                process.send_signal(before)
            body = slash_command_body(
                text="declare P2 Search is slow",
                user_id="U0ALICE",
                channel_id="C0GENERAL",
                response_url=slack.new_response_url(channel="C0GENERAL", user_id="U0ALICE"),
            )
            async with SlackRequestSender(
                f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET
            ) as sender:
                assert (await sender.send(body)).status == 200
            if before is not None:
                await _wait_healthy(health, process)
            process.send_signal(then)
            _, stderr = await asyncio.wait_for(process.communicate(), timeout=20)
        finally:
            await _stop(process)
    with contextlib.closing(sqlite3.connect(database)) as db:
        titles = [row[0] for row in db.execute("SELECT title FROM incidents")]
    return process.returncode, (early + stderr).decode(), titles


async def test_a_sighup_stops_the_bot_as_sigterm_does_finishing_what_it_acknowledged(
    tmp_path: Path,
) -> None:
    """Operators of Prometheus and Alertmanager send SIGHUP to reload a configuration. The
    bot had no handler for it: the process died at once (status -1), a declaration Slack
    was answered 200 for possibly never made, the store never closed. The policy cannot be
    swapped in a running bot, so SIGHUP stops it exactly as SIGTERM does, and says so."""
    status, log, titles = await _declare_and_signal(tmp_path, [_entry_point()], then=signal.SIGHUP)
    assert status == 0, log
    assert "Traceback" not in log
    assert "stopping: signal received (SIGHUP: a stop, as SIGTERM;" in log
    assert "start the bot again to apply a changed policy" in log
    assert titles == ["Search is slow"]  # acknowledged before the signal: made before the exit


async def test_a_bot_started_under_nohup_keeps_running_through_a_sighup(
    tmp_path: Path,
) -> None:
    """Started with SIGHUP ignored (`nohup chatops-bot run &`), a closed terminal's SIGHUP must
    not stop the bot: it keeps serving, and only SIGTERM stops it."""
    nohup = shutil.which("nohup")
    assert nohup, "coreutils' nohup is missing"
    status, log, titles = await _declare_and_signal(
        tmp_path, [nohup, _entry_point()], before=signal.SIGHUP, then=signal.SIGTERM
    )
    assert status == 0, log
    assert "SIGHUP" not in log and "stopping: signal received (SIGTERM)" in log
    assert titles == ["Search is slow"]


async def test_a_bot_started_with_sigterm_ignored_still_stops_cleanly_on_it(
    tmp_path: Path,
) -> None:
    """Only SIGHUP is left ignored when the bot starts with it ignored (nohup). A SIGTERM
    ignored by whatever started the bot (a supervisor's or a shell's leftover) was honoured
    too: the container's stop signal did nothing and the kill came at the end of the grace
    period, the work Slack was answered for cut short. README: SIGTERM stops the bot."""
    env = shutil.which("env")
    assert env, "coreutils' env is missing"
    status, log, titles = await _declare_and_signal(
        tmp_path, [env, "--ignore-signal=TERM", _entry_point()], then=signal.SIGTERM
    )
    assert status == 0, log
    assert "stopping: signal received (SIGTERM)" in log
    assert titles == ["Search is slow"]


async def test_a_sigterm_while_socket_mode_waits_for_slack_stops_cleanly(
    tmp_path: Path,
) -> None:
    """Start-up waits for Slack in Socket Mode (its connection retried while Slack is away),
    and the signal handlers were installed only after it: SIGTERM then killed the process
    (status -15), store unclosed and deliveries cut short."""
    with socket_closed_port() as closed:
        env = _env(
            tmp_path,
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_APP_TOKEN="xapp-1-A0TEST-1-cli",
            SLACK_API_URL=f"http://127.0.0.1:{closed}/api/",
            DATABASE_URL=f"sqlite:///{tmp_path}/run.db",
        )
        process = await asyncio.create_subprocess_exec(
            _entry_point(),
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            cwd=tmp_path,
            env=env,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stderr is not None
        early = b""
        async with asyncio.timeout(30):
            while b"Socket Mode: Slack not reached yet" not in early:
                line = await process.stderr.readline()
                assert line, early.decode()
                early += line
        _, stderr = await _stop(process)
    log = (early + stderr).decode()
    assert process.returncode == 0, log
    assert "stopping: signal received during start-up" in log


async def test_run_needs_nothing_of_the_console(tmp_path: Path) -> None:
    """The image leaves bot/console out (.dockerignore): `run` must work without it, and
    without loading the clients of a store or a target it does not use."""
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "bot/console/" in ignored
    source = tmp_path / "src"
    shutil.copytree(ROOT / "bot", source / "bot", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "commands", source / "commands")
    shutil.rmtree(source / "bot" / "console")
    child = (
        "import atexit, sys\n"
        f"sys.path.insert(0, {str(source)!r})\n"
        "import bot\n"
        "print('from', bot.__file__, flush=True)\n"
        "atexit.register(lambda: print('console modules',"
        " sorted(m for m in sys.modules if m.startswith(('bot.console', 'prompt_toolkit',"
        " 'rich'))), flush=True))\n"
        # Client libraries of stores and targets it does not use, and the status page's
        # templates while no one asked for the page (memory: bench/README.md).
        "atexit.register(lambda: print('unused clients',"
        " sorted(m for m in ('psycopg', 'redis', 'urllib3', 'kubernetes', 'boto3', 'pglast',"
        " 'jinja2') if m in sys.modules), flush=True))\n"
        "from bot.cli import main\n"
        "sys.exit(main())\n"
    )
    async with SlackDouble(bot_token=BOT_TOKEN) as slack:
        env = _env(
            tmp_path,
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=slack.api_url,
            DATABASE_URL=f"sqlite:///{tmp_path}/image.db",
        )
        process, port, early = await _serve([sys.executable, "-c", child], tmp_path, env)
        try:
            await _wait_healthy(f"http://127.0.0.1:{port}/healthz", process)
            body = slash_command_body(
                text="declare P1 Checkout API returns 502",
                user_id="U0ALICE",
                channel_id="C0GENERAL",
                response_url=slack.new_response_url(channel="C0GENERAL", user_id="U0ALICE"),
            )
            async with SlackRequestSender(
                f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET
            ) as sender:
                assert (await sender.send(body)).status == 200
            [reply] = await slack.wait_for_response(1, timeout=10)
            assert "Declared *INC-" in reply.payload["text"]
        finally:
            stdout, stderr = await _stop(process)
    assert process.returncode == 0, (early + stderr).decode()
    out = stdout.decode()
    assert f"from {source / 'bot' / '__init__.py'}" in out
    assert "console modules []" in out, out
    assert "unused clients []" in out, out  # on SQLite, without Redis


async def test_run_loads_the_catalogs_client_libraries_before_it_listens(tmp_path: Path) -> None:
    """A library imported on first use spent its import (up to 4 s on a busy core) out of the
    first check's or remediation's timeout: the first approved scale after a start failed as
    "timed out after 3 s". Libraries the catalog names are loaded before Slack can reach the
    bot; the ones it does not name stay out (memory)."""
    policy = _policy_with_services(
        tmp_path,
        "  checkout:\n    kubernetes: {context: test, namespace: shop, deployments: [checkout]}\n",
    )
    child = (
        "import logging, sys\n"
        "class AtListen(logging.Filter):\n"
        "    def filter(self, record):\n"
        "        if record.getMessage().startswith('listening on'):\n"
        "            print('at listen', sorted(m for m in ('kubernetes', 'boto3')"
        " if m in sys.modules), flush=True)\n"
        "        return True\n"
        "logging.getLogger('bot.runtime').addFilter(AtListen())\n"
        "from bot.cli import main\n"
        "sys.exit(main())\n"
    )
    async with SlackDouble(bot_token=BOT_TOKEN) as slack:
        env = _env(
            tmp_path,
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=slack.api_url,
            DATABASE_URL=f"sqlite:///{tmp_path}/libraries.db",
            CHATOPS_POLICY=str(policy),
        )
        process, port, early = await _serve([sys.executable, "-c", child], tmp_path, env)
        try:
            await _wait_healthy(f"http://127.0.0.1:{port}/healthz", process)
        finally:
            stdout, stderr = await _stop(process)
    assert process.returncode == 0, (early + stderr).decode()
    assert "at listen ['kubernetes']" in stdout.decode(), (early + stderr).decode()


# ----- report and stats --------------------------------------------------------------------


async def test_report_and_stats_print_from_the_database(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from slack_sdk.web.async_client import AsyncWebClient

    from bot.clock import FakeClock
    from bot.incidents.schemas import DeclareIncident
    from bot.models import Actor, Severity
    from bot.remediation import recovery_storage
    from bot.services import build_services
    from bot.slack.notifier import SlackNotifier

    database_url = f"sqlite:///{tmp_path}/cli.db"
    clock = FakeClock(datetime.now(UTC) - timedelta(hours=2))
    services = build_services(
        policy=load_policy(None).model_copy(update={"escalation": {}}),
        store=create_store(database_url),
        notifier=SlackNotifier(AsyncWebClient(token="xoxb-unused", base_url="http://127.0.0.1:9/")),
        clock=clock,
    )
    await services.start(run_dispatcher=False, run_scheduler=False)
    alice = Actor("U0ALICE")
    try:
        incident = await services.incidents.declare(
            DeclareIncident(severity=Severity.P1, title="Checkout returns 502"), alice
        )
        clock.advance(minutes=12)
        await services.incidents.acknowledge(incident.id, alice)
        # Automatic recovery restarted a deployment during it: the report's last section.
        async with services.store.transaction() as tx:
            restart = await recovery_storage.add_restart(
                tx, "checkout", "web", clock.now(), "unhealthy", incident.id
            )
            await recovery_storage.finish_restart(
                tx, restart, "succeeded", "rolled out", clock.now()
            )
        clock.advance(minutes=48)
        await services.incidents.resolve(incident.id, alice, summary="Rolled back the deploy")
    finally:
        await services.close()
    env = _env(tmp_path, DATABASE_URL=database_url)

    report = await asyncio.to_thread(_cli, "report", incident.id, cwd=tmp_path, env=env)
    assert report.returncode == 0, report.stderr
    assert report.stdout.startswith(f"# Post-incident report: {incident.id}")
    assert "| Time to acknowledge | 12 min |" in report.stdout
    assert "| Time to resolve | 1 h |" in report.stdout
    assert "Rolled back the deploy" in report.stdout
    # The same report as `/incident report` shares: the remediation runs were left out.
    assert "## Remediation runs" in report.stdout
    assert "- kubernetes.restart (automatic recovery) on checkout/web" in report.stdout

    chart = tmp_path / "chart.png"
    stats = await asyncio.to_thread(
        _cli, "stats", "--days", "7", "--chart", str(chart), cwd=tmp_path, env=env
    )
    assert stats.returncode == 0, stats.stderr
    assert "P1: 1 incident(s) · MTTA 12 min median · 12 min p90 (n=1)" in stats.stdout
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # A chart path that cannot be written: one line naming it, after the figures.
    nowhere = str(tmp_path / "no-such-dir" / "chart.png")
    unwritten = await asyncio.to_thread(_cli, "stats", "--chart", nowhere, cwd=tmp_path, env=env)
    assert unwritten.returncode == 1 and "P1: 1 incident(s)" in unwritten.stdout
    assert unwritten.stderr.splitlines() == [
        f"chatops-bot: cannot write the chart to {nowhere}: No such file or directory"
    ]

    unknown = await asyncio.to_thread(_cli, "report", "INC-20200101-001", cwd=tmp_path, env=env)
    assert unknown.returncode == 1 and "There is no incident" in unknown.stderr


@pytest.mark.parametrize("typed", ["INC-1\x1b[31mred", "A" * 50_000])
def test_report_refuses_a_malformed_id_without_echoing_it(tmp_path: Path, typed: str) -> None:
    """`report` echoed whatever was typed: a terminal's escape sequences, or 50 KB."""
    env = _env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/never-opened.db")
    result = _cli("report", typed, cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert result.stderr == (
        "chatops-bot: There is no such incident; IDs look like INC-20261127-001.\n"
    )
    assert not (tmp_path / "never-opened.db").exists()


def test_check_config_says_when_nobody_may_approve(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text(
        "announce_channel: C0INCIDENTS\n"
        "severities:\n"
        "  P0: {ack_within: 15m, resolve_within: 1h}\n"
        "  P1: {ack_within: 30m, resolve_within: 4h}\n"
        "  P2: {ack_within: 2h, resolve_within: 1d}\n"
        "  P3: {ack_within: 1d, resolve_within: 1w}\n"
        "roles: {approvers: []}\n"
    )
    result = _cli("check-config", str(policy), cwd=tmp_path, env=_env(tmp_path))
    assert result.returncode == 0
    assert "roles.approvers is empty: nobody may approve" in result.stdout
