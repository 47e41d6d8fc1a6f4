"""Every `type: ignore` left in bot/ and commands/ names its error code and says why."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_IGNORE = re.compile(r"#\s*type:\s*ignore(?P<code>\[[a-z-, ]+\])?(?P<rest>.*)$")


def test_every_type_ignore_names_its_code_and_its_reason() -> None:
    bare = []
    for path in sorted([*(ROOT / "bot").rglob("*.py"), *(ROOT / "commands").rglob("*.py")]):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = _IGNORE.search(line)
            if match is None:
                continue
            reason = match["rest"].strip().lstrip("#").strip()
            if not match["code"] or len(reason) < 10:
                bare.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert bare == []
