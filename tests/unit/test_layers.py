"""Data flows down: services never import Slack; listeners live in commands/ only."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Modules allowed to talk Slack: the adapter layer and the process wiring.
SLACK_ALLOWED = {
    "bot/slack",
    "bot/app.py",
    "bot/runtime.py",
    "bot/server.py",
    "bot/console",
    "bot/cli.py",
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_services_do_not_import_slack() -> None:
    offenders = []
    for path in (ROOT / "bot").rglob("*.py"):
        relative = path.relative_to(ROOT).as_posix()
        if any(relative.startswith(allowed) for allowed in SLACK_ALLOWED):
            continue
        prefixes = ("slack_bolt", "slack_sdk", "bot.slack")
        slack = {n for n in _imports(path) if n.startswith(prefixes)}
        if slack:
            offenders.append(f"{relative}: {sorted(slack)}")
    assert offenders == []


def test_services_do_not_import_commands() -> None:
    for path in (ROOT / "bot").rglob("*.py"):
        relative = path.relative_to(ROOT).as_posix()
        if relative in {"bot/app.py"}:
            continue
        assert not {n for n in _imports(path) if n.startswith("commands")}, relative
