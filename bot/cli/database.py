"""The bot's database as the command line opens it: migrated by `migrate` and `diagnose`
only; the reading commands refuse one the bot never used or one of another version."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

from bot.errors import ConfigError, SchemaMismatch
from bot.redact import redact_text

if TYPE_CHECKING:
    from bot.store import Store


async def open_store() -> Store:
    from bot.settings import StoreSettings, load_settings
    from bot.store import create_store

    settings = load_settings(StoreSettings)
    store = create_store(
        settings.DATABASE_URL,
        pool_size=settings.DATABASE_POOL_SIZE,
        queue_timeout=settings.DATABASE_QUEUE_SECONDS,
        prepare=settings.DATABASE_PREPARE,
    )
    await store.open()
    return store


async def open_existing_store() -> Store:
    """The bot's database, for the commands that only read it (audit, report, stats). One
    the bot has never used (a mistyped path, the wrong DATABASE_URL) is refused: created on
    the spot, it was reported as an intact audit log of 0 entries."""
    from bot.settings import StoreSettings, load_settings
    from bot.store.sqlite import sqlite_path

    url = load_settings(StoreSettings).DATABASE_URL
    never_used = (
        f"DATABASE_URL names a database chatops-bot has never used ({redact_text(url)});"
        " set it to the bot's own (`chatops-bot migrate` creates a new one)"
    )
    if url.startswith("sqlite://"):
        path = sqlite_path(url)
        if path != ":memory:" and not await asyncio.to_thread(os.path.isfile, path):
            raise ConfigError(never_used)
    store = await open_store()
    if not await ever_migrated(store):
        await store.close()
        raise ConfigError(never_used)
    return store


async def ever_migrated(store: Store) -> bool:
    """Whether chatops-bot has ever migrated this database (read only: nothing is created)."""
    async with store.transaction() as tx:
        if tx.dialect == "sqlite":
            sql = "SELECT 1 AS one FROM sqlite_master WHERE type = 'table' AND name = ?"
        else:
            sql = "SELECT 1 AS one FROM information_schema.tables WHERE table_name = ?"
        return await tx.fetchone(sql, ("schema_migrations",)) is not None


async def require_current_schema(store: Store) -> None:
    """The reading commands read; they never migrate. A database this version would migrate
    (a newer CLI than the bot running on it) is refused, naming `migrate`, and left as it
    is: migrated from an operator's laptop, the bot still running the older version would
    refuse to start at its next restart."""
    try:
        await refuse_another_version(store, "this command only reads, so it changed nothing")
    except BaseException:
        await store.close()
        raise


async def refuse_another_version(store: Store, why: str) -> None:
    """ConfigError (exit 2) unless the database's schema is this version's exactly."""
    from bot.store.migrate import unapplied

    try:
        missing = await unapplied(store)
    except SchemaMismatch as exc:
        # Migrated by a newer bot: the wrong version for this database, exit 2 as the other
        # refused databases; 1 is `audit verify`'s broken chain.
        raise ConfigError(str(exc)) from None
    if missing:
        raise ConfigError(
            f"the database lacks {len(missing)} migration(s) of this version of chatops-bot"
            f" ({', '.join(missing)}); {why}."
            " Upgrade the bot (it migrates at start-up) or run `chatops-bot migrate`"
        )
