"""Files the bot shares (a report, the statistics chart), saved where a person can open them.

A terminal cannot show a PNG: `:file` writes the last shared file into `shared/` beside the
console's database (its SQLite file's directory, else the console's data directory) and
prints the path. Names keep the file's own name, prefixed by Slack's file ID so two reports
of one incident never overwrite each other.
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.console.config import data_dir
from bot.console.workspace.state import UploadedFile

SHARED_DIR = "shared"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_NAME_MAX = 120


def shared_files_dir(database_url: str) -> Path:
    """`shared/` beside the SQLite database of `database_url`; for a server database (no
    file to sit beside), in the console's data directory."""
    prefix = "sqlite:///"
    if database_url.startswith(prefix) and database_url[len(prefix) :] not in ("", ":memory:"):
        return Path(database_url[len(prefix) :]).expanduser().parent / SHARED_DIR
    return data_dir() / SHARED_DIR


def file_name(shared: UploadedFile) -> str:
    """`F0123-inc-20261205-001-report.md`: the ID, then the file's name made safe."""
    name = _UNSAFE.sub("_", Path(shared.filename).name).strip("._") or "file"
    return f"{_UNSAFE.sub('_', shared.id)}-{name}"[:_NAME_MAX]


def save_shared(shared: UploadedFile, directory: Path) -> Path:
    """Write the file's bytes into `directory` (made if missing); returns the path.
    Raises OSError when it cannot be written."""
    if shared.content is None:
        raise ValueError(f"{shared.filename} has no content yet")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / file_name(shared)
    path.write_bytes(shared.content)
    return path
