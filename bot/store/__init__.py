"""Persistence: the Store port, its SQLite and PostgreSQL adapters, and migrations."""

from __future__ import annotations

from bot.errors import ConfigError
from bot.store.base import (
    Dialect,
    Row,
    Statements,
    Store,
    Tx,
    among,
    for_update,
    skip_locked,
    uncounted,
)
from bot.store.migrate import migrate


def create_store(
    url: str, *, pool_size: int = 10, queue_timeout: float = 60.0, prepare: bool = True
) -> Store:
    """Pick the adapter from DATABASE_URL (not yet opened).

    `pool_size`: PostgreSQL connections at most; `queue_timeout`: how long a transaction
    waits for a connection (or SQLite's write lock) before StoreBusy; `prepare`: whether
    PostgreSQL statements may be prepared on the server (not behind a transaction pooler).
    """
    if url.startswith("sqlite://"):
        from bot.store.sqlite import SqliteStore

        return SqliteStore(url, queue_timeout=queue_timeout)
    if url.startswith(("postgresql://", "postgres://")):
        from bot.store.postgres import PostgresStore

        return PostgresStore(url, max_size=pool_size, queue_timeout=queue_timeout, prepare=prepare)
    raise ConfigError(f"DATABASE_URL is malformed: unsupported scheme {url.split(':', 1)[0]!r}")


__all__ = [
    "Dialect",
    "Row",
    "Statements",
    "Store",
    "Tx",
    "among",
    "create_store",
    "for_update",
    "migrate",
    "skip_locked",
    "uncounted",
]
