"""No module of /diagnose, /remediate (bot/remediation) or the outbox grows past about 400
lines (the project's rule): a module that size is two things, split on its seam.
bot/diagnostics/probes/postgres.py had grown to 414 lines."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIMIT = 400
CHECKED = [
    "bot/diagnostics",
    "bot/outbox",
    "bot/remediation",
    "commands/diagnose.py",
    "commands/remediate.py",
]


def _modules() -> list[Path]:
    found: list[Path] = []
    for name in CHECKED:
        path = REPO / name
        found += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return found


def test_the_walk_finds_the_probes() -> None:
    assert REPO / "bot/diagnostics/probes/postgres.py" in _modules()


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(REPO)))
def test_a_module_stays_within_about_400_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= LIMIT, f"{path.relative_to(REPO)} has {lines} lines: split it on a seam"
