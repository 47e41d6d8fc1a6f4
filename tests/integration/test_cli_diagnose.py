"""The terminal: `chatops-bot diagnose`, `/diagnose` typed in the console, and
`check-config` pointing at a catalog error by file:line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import yaml

from bot.policy import default_policy_text


def _entry_point() -> str:
    beside_python = Path(sys.executable).parent / "chatops-bot"
    found = str(beside_python) if beside_python.exists() else shutil.which("chatops-bot")
    assert found, "the chatops-bot entry point is not installed (pip install -e .)"
    return found


def _policy_file(tmp_path: Path) -> Path:
    data = yaml.safe_load(default_policy_text())
    data["services"] = {"cache": {"redis": {"url_env": "CACHE_URL"}}}
    path = tmp_path / "chatops.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def _run(
    args: list[str], tmp_path: Path, input_text: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "LANG": "C.UTF-8",
        "DATABASE_URL": f"sqlite:///{tmp_path}/bot.db",
        **env,
    }
    environment = {k: v for k, v in environment.items() if v}  # "" means unset
    return subprocess.run(
        [_entry_point(), *args],
        input=input_text,
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=90,
        check=False,
    )


@pytest.fixture
def cold_cache(redis_url: str) -> str:
    client = redis.Redis.from_url(redis_url)
    client.config_resetstat()
    for n in range(4):
        client.get(f"nothing:{n}")
    client.close()
    return redis_url


@pytest.mark.redis
def test_chatops_bot_diagnose_prints_grades_and_exits_by_the_worst(
    cold_cache: str, tmp_path: Path
) -> None:
    policy = _policy_file(tmp_path)
    result = _run(["diagnose", "cache"], tmp_path, CHATOPS_POLICY=str(policy), CACHE_URL=cold_cache)
    assert result.returncode == 1, result.stderr  # WARN
    assert result.stdout.startswith("Diagnosis of cache: WARN")
    assert "WARN  Cache hit ratio: 0.0 % (0 hits, 4 misses)  [warn < 80 %]" in result.stdout
    assert "1. Warm the cache: would by hand" in result.stdout
    # Not 1, which is WARN: a script read a mistyped service as a warning of it.
    unknown = _run(["diagnose", "nope"], tmp_path, CHATOPS_POLICY=str(policy))
    assert unknown.returncode == 2 and "No service called 'nope'" in unknown.stderr
    check = _run(["diagnose", "cache", "postgres"], tmp_path, CHATOPS_POLICY=str(policy))
    assert check.returncode == 2 and "No check called 'postgres'" in check.stderr


@pytest.mark.redis
def test_chatops_bot_diagnose_takes_commas_between_checks_as_slash_diagnose_does(
    cold_cache: str, tmp_path: Path
) -> None:
    # `/diagnose cache,redis` ran the Redis checks; `chatops-bot diagnose cache,redis`, the
    # same words at a terminal, answered "No service called 'cache,redis'" (exit 2).
    policy = _policy_file(tmp_path)
    for args in (["cache,redis"], ["cache", "redis,"]):
        result = _run(
            ["diagnose", *args], tmp_path, CHATOPS_POLICY=str(policy), CACHE_URL=cold_cache
        )
        assert result.returncode == 1, result.stderr
        assert result.stdout.startswith("Diagnosis of cache: WARN"), result.stdout


@pytest.mark.redis
def test_diagnose_typed_in_the_console_shows_the_summary_and_its_buttons(
    cold_cache: str, tmp_path: Path
) -> None:
    policy = _policy_file(tmp_path)
    result = _run(
        ["console"],
        tmp_path,
        input_text="/diagnose cache\n:quit\n",
        CHATOPS_POLICY=str(policy),
        CACHE_URL=cold_cache,
        DATABASE_URL="",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Diagnosing `cache`" in out or "Diagnosing cache" in out
    assert "DIAGNOSIS OF CACHE: WARN" in out.upper()
    assert "Cache hit ratio" in out and "Warm the cache" in out
    assert "Traceback" not in result.stderr


def test_check_config_points_at_a_catalog_error(tmp_path: Path) -> None:
    text = default_policy_text().replace(
        "services: {}",
        "services:\n  checkout:\n    postgres: {dsn_env: 'postgresql://app:pw@db/shop'}\n",
    )
    assert text != default_policy_text()
    bad = tmp_path / "bad.yml"
    bad.write_text(text)
    line = text.splitlines().index("    postgres: {dsn_env: 'postgresql://app:pw@db/shop'}") + 1
    result = _run(["check-config", str(bad)], tmp_path)
    assert result.returncode == 1
    assert f"{bad}:{line}: services.checkout.postgres.dsn_env: give the name of an environment" in (
        result.stderr
    )
    assert "pw@" not in result.stderr
