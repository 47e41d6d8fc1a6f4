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


class StoreUnavailable(ChatOpsError):
    """The database cannot be reached or refused the operation."""


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
