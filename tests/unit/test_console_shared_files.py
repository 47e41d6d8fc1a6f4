"""Where the console saves what the bot shares (`:file`), and under which names."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.console.shared_files import SHARED_DIR, file_name, save_shared, shared_files_dir
from bot.console.workspace.state import UploadedFile


def test_beside_the_sqlite_database_else_in_the_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert shared_files_dir(f"sqlite:///{tmp_path}/console.db") == tmp_path / SHARED_DIR
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    expected = tmp_path / "xdg" / "chatops-bot" / SHARED_DIR
    assert shared_files_dir("postgresql://bot@db/chatops") == expected


def test_names_stay_inside_the_directory_and_apart(tmp_path: Path) -> None:
    hostile = UploadedFile("F0001", "../../etc/passwd", 3, 0, content=b"abc")
    assert file_name(hostile) == "F0001-passwd"
    chart = UploadedFile("F0002", "stats 30 days (P1).png", 4, 0, content=b"\x89PNG")
    assert file_name(chart) == "F0002-stats_30_days_P1_.png"
    saved = save_shared(chart, tmp_path / SHARED_DIR)
    assert saved == tmp_path / SHARED_DIR / "F0002-stats_30_days_P1_.png"
    assert saved.read_bytes() == b"\x89PNG"
    assert save_shared(hostile, tmp_path / SHARED_DIR).parent == tmp_path / SHARED_DIR
