"""Clients for the systems in the service catalog, one module per system.

Each client is built from a catalog entry, so it can reach only what the catalog names, and
bounds every call with the entry's timeout. Errors of psycopg, redis, kubernetes, botocore and
aiohttp are translated here, and only here, into TargetError (messages redacted). Diagnostics
use them read-only; remediations reuse them for their write calls.
"""

from bot.targets.errors import (
    TargetDenied,
    TargetError,
    TargetMisconfigured,
    TargetNotFound,
    TargetTimeout,
    TargetUnavailable,
)

__all__ = [
    "TargetDenied",
    "TargetError",
    "TargetMisconfigured",
    "TargetNotFound",
    "TargetTimeout",
    "TargetUnavailable",
]
