"""Where the console keeps its things: the database, the bot's log and the typed history."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bot.errors import ConfigError
from bot.settings import StoreSettings, load_settings


def data_dir() -> Path:
    """Per-user data directory (XDG), or the working directory when that is not writable."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    path = Path(base) / "chatops-bot"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return Path.cwd()
    return path if os.access(path, os.W_OK) else Path.cwd()


@dataclass(frozen=True)
class ConsoleConfig:
    database_url: str
    policy_path: Path | None
    log_file: Path | None
    history_file: Path | None = None


def console_config(*, fresh: bool = False) -> ConsoleConfig:
    """DATABASE_URL and CHATOPS_POLICY from the environment, else the console's own file."""
    env = load_settings(StoreSettings)  # a malformed variable stops here, named
    directory = data_dir()
    if os.environ.get("DATABASE_URL"):
        if fresh:
            raise ConfigError("--fresh only resets the console's own database; unset DATABASE_URL")
        url = env.DATABASE_URL
    else:
        database = directory / "console.db"
        if fresh:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{database}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{database}"
    return ConsoleConfig(
        url, env.CHATOPS_POLICY, directory / "console.log", directory / "console_history"
    )
