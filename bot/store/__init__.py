"""Persistence: the Store port, its SQLite and PostgreSQL adapters, and migrations."""

from __future__ import annotations

from bot.store.base import Dialect, Row, Store, Tx, for_update, skip_locked
from bot.store.migrate import migrate


def create_store(url: str) -> Store:
    """Pick the adapter from DATABASE_URL (not yet opened)."""
    if url.startswith("sqlite://"):
        from bot.store.sqlite import SqliteStore

        return SqliteStore(url)
    if url.startswith(("postgresql://", "postgres://")):
        from bot.store.postgres import PostgresStore

        return PostgresStore(url)
    raise ValueError(f"unsupported DATABASE_URL scheme: {url.split(':', 1)[0]}")


__all__ = ["Dialect", "Row", "Store", "Tx", "create_store", "for_update", "migrate", "skip_locked"]
