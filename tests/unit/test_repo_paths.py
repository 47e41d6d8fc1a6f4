"""The suite runs on a clone with nothing beside it: no test, script or benchmark may name a
path outside the repository (issue 7: tests used to read Slack's schemas from ../shared)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECKED = ["tests", "scripts", "bench", ".ci", "bot", "commands"]
SUFFIXES = {".py", ".sh", ""}

# An absolute path into this workplace, or a relative step out of the repository's root.
_OUTSIDE = re.compile(r"/work/|\.\./shared|\.\./\.library|['\"]shared['\"]\s*/")
_PARENTS = re.compile(r"Path\(__file__\)\.resolve\(\)\.parents\[(\d+)\]")


def _files() -> list[Path]:
    found = []
    for top in CHECKED:
        for path in (REPO / top).rglob("*"):
            if path.is_file() and path.suffix in SUFFIXES and "slack_schemas" not in path.parts:
                if path.suffix or path.read_bytes()[:2] == b"#!":
                    found.append(path)
    return found


def test_the_walk_finds_the_suite() -> None:
    names = {path.name for path in _files()}
    assert {"harness.py", "test", "run", "conftest.py"} <= names


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_path_outside_the_repository(path: Path) -> None:
    text = path.read_text(errors="replace")
    if path == Path(__file__).resolve():
        return
    bad = _OUTSIDE.search(text)
    assert bad is None, f"{path.relative_to(REPO)} names {bad.group(0)!r}, outside the repository"
    depth = len(path.relative_to(REPO).parts) - 1  # parents[depth] is the repository root
    for match in _PARENTS.finditer(text):
        assert int(match.group(1)) <= depth, (
            f"{path.relative_to(REPO)} climbs to parents[{match.group(1)}], above the repository"
        )
