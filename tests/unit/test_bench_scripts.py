"""Benchmarks run on demand, never in the suite; this only keeps them runnable: each script
must import what it uses (a module moved in a refactor once broke one unnoticed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
SCRIPTS = sorted(BENCH.glob("*.py"))


def test_there_are_benchmarks() -> None:
    assert len(SCRIPTS) >= 4


@pytest.fixture(scope="module")
def started() -> dict[str, dict[str, Any]]:
    """`python SCRIPT --help` for every script, each in its own process, all forked from one
    that imported the bot once (tests/forked_scripts.py): 1-2 s in all, not 1 s a script."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.forked_scripts", "--help", "--", *map(str, SCRIPTS)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return {result["script"]: result for result in json.loads(done.stdout)}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_script_starts(script: Path, started: dict[str, dict[str, Any]]) -> None:
    done = started[str(script)]
    assert done["returncode"] == 0, done["stderr"][-2000:]
    assert "usage:" in done["stdout"]
