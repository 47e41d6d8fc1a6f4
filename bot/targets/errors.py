"""What can go wrong reaching a catalogued system, whatever client reached it."""

from __future__ import annotations

import os

from bot.errors import ChatOpsError
from bot.redact import redact_text


class TargetError(ChatOpsError):
    """A catalogued system could not be read (or written). The message is redacted and safe
    to show; `system` names the client ("postgres", "kubernetes"...)."""

    retryable = True

    def __init__(self, system: str, message: str) -> None:
        self.system = system
        self.detail = redact_text(message)[:500]
        super().__init__(f"{system}: {self.detail}")


class TargetUnavailable(TargetError):
    """Unreachable, refused, or failing on its side (5xx, connection reset)."""


class TargetTimeout(TargetError):
    """No answer within the catalog entry's timeout."""


class TargetDenied(TargetError):
    """Authentication or authorisation refused."""

    retryable = False


class TargetNotFound(TargetError):
    """The named object (deployment, ECS service, log group...) does not exist."""

    retryable = False


class TargetMisconfigured(TargetError):
    """The catalog entry cannot be used here: an unset environment variable, no kubeconfig."""

    retryable = False


def from_environment(system: str, name: str) -> str:
    """The secret a catalog entry names by its environment variable (never the catalog's
    own text); TargetMisconfigured when it is unset or blank."""
    value = os.environ.get(name, "").strip()
    if not value:
        raise TargetMisconfigured(system, f"environment variable {name} is not set")
    return value
