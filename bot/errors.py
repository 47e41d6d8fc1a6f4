"""One exception hierarchy for the whole bot.

Errors from the layer below (psycopg, sqlite3, redis, Slack) are translated at the adapter,
so services and listeners only ever see these.
"""

from __future__ import annotations


class ChatOpsError(Exception):
    """Root of every error the bot raises on purpose; its message is safe to show a user."""


class ConfigError(ChatOpsError):
    """Settings or policy are missing or malformed."""


class UsageError(ChatOpsError):
    """A command was typed wrong; the message says how to type it right."""


class NotFound(ChatOpsError):
    """The named object (an incident, a reminder...) does not exist."""


class PermissionDenied(ChatOpsError):
    """The actor may not do this."""


class Conflict(ChatOpsError):
    """The action is not allowed in the object's current state."""


class DuplicateRequest(ChatOpsError):
    """The same Slack request (a retry or a double click) was already handled."""


class StoreError(ChatOpsError):
    """The database failed an operation; the transaction it was in changed nothing.

    The Store raises only this family, never a driver error. The subclasses say what to do
    about it; a plain StoreError is a statement the database rejected (a bug, not an outage).
    """


class StoreUnavailable(StoreError):
    """The database cannot be reached (down, refusing connections, connection lost)."""


class StoreBusy(StoreError):
    """The database is up but no connection came free within the wait bound: load, not an
    outage. Nothing was changed; the same request can be tried again shortly."""


class UniqueViolation(StoreError):
    """A row with the same unique key already exists. The whole transaction rolled back;
    callers that expect duplicates use `ON CONFLICT ... DO NOTHING` instead."""


class SchemaMismatch(ChatOpsError):
    """The database's schema is not one this code can run against: a migration file was
    changed after it was applied, or the database was migrated by a newer version."""


class CoordinatorUnavailable(ChatOpsError):
    """Redis (or the in-process coordinator) cannot be reached."""


class NotifierError(ChatOpsError):
    """A notification could not be delivered (Slack error, rate limit, network)."""

    def __init__(
        self,
        message: str,
        *,
        error_code: str = "",
        retryable: bool = True,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.retryable = retryable
        self.retry_after = retry_after
