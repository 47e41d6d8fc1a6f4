"""The client libraries the catalog's systems need, loaded before the bot takes traffic.

The heavy ones (kubernetes about 60 MB, boto3) are imported on first use, so a bot whose
catalog never names a cluster or AWS does not hold them. But a first use inside a remediation
or a check spends the import (1 s on an idle core, 4 s on a busy one) out of that call's
timeout: the first `/diagnose` after a deploy read "timed out" and the first approved scale
failed. So the libraries the catalog does name are imported at start, in a thread (the event
loop keeps serving /livez), before the server accepts Slack's requests.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Iterable, Mapping

from bot.catalog import Service

log = logging.getLogger(__name__)

# What each catalog system imports on first use (bot/targets/<system>.py).
_MODULES: dict[str, tuple[str, ...]] = {
    "postgres": ("psycopg",),
    "redis": ("redis.asyncio",),
    "kubernetes": ("kubernetes.client", "kubernetes.config", "urllib3"),
    "aws": ("boto3", "botocore.config"),
}


def needed(services: Mapping[str, Service]) -> list[str]:
    """The modules the catalog's entries will import, in a stable order, each once."""
    modules: dict[str, None] = {}
    for service in services.values():
        for system, names in _MODULES.items():
            if getattr(service, system) is not None:
                modules.update(dict.fromkeys(names))
    return list(modules)


def _import_all(modules: Iterable[str]) -> None:
    for name in modules:
        importlib.import_module(name)


async def load(services: Mapping[str, Service]) -> None:
    """Import what the catalog needs, off the event loop. A library that fails to import is
    logged, not fatal: its checks report it, as they would have on first use."""
    modules = needed(services)
    if not modules:
        return
    try:
        await asyncio.to_thread(_import_all, modules)
    except Exception:
        log.exception("loading the catalog's client libraries (%s) failed", ", ".join(modules))
