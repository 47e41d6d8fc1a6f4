"""What every Web API method of the Slack double shares: its error answer and its arguments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ApiError(Exception):
    """A Slack Web API error answer: `{"ok": false, "error": error, **extra}`."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The JSON body Slack sends for this error."""
        return {"ok": False, "error": self.error, **self.extra}


def as_flag(value: Any) -> bool:
    """Slack booleans arrive as JSON booleans or as form strings ("true", "1")."""
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return bool(value)


def require(params: Mapping[str, Any], name: str) -> Any:
    """A required argument, or the error Slack answers when it is missing or empty."""
    value = params.get(name)
    if value is None or value == "":
        raise ApiError(
            "invalid_arguments",
            response_metadata={"messages": [f"[ERROR] missing required field: {name}"]},
        )
    return value
