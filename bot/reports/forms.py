"""The postmortem form's input, validated at the edge (pydantic), with a message per field."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, Field

from bot.policy import Calendar
from bot.reports.models import NewActionItem
from bot.slack_ids import is_user_id
from bot.text import forbidden_character, normalize_newlines

ACTION_ROWS = 3  # blank rows for new action items in the form
TEXT_FIELDS = ("root_cause", "resolution", "prevention", "lessons", "affected_users", "data_impact")
# The impact's start and detection are one unit: validated together, saved together.
IMPACT_TIMES = "impact_times"
SHOWN_FIELDS = (*TEXT_FIELDS, IMPACT_TIMES)
# Each text field in a sentence about it ("The root cause contains ...").
_NAMES = {
    "root_cause": "root cause contains",
    "resolution": "resolution contains",
    "prevention": "prevention contains",
    "lessons": "lessons learned contain",
    "affected_users": "affected users contain",
    "data_impact": "data impact contains",
}


def shown_digest(value: str | datetime | None, other: datetime | None = None) -> str:
    """A short digest of what a form field showed (the impact's two times as one).

    The form carries one per field in its notes, so saving it changes only the fields its
    submitter edited: two people filling in one postmortem no longer erase each other's text
    with the empty fields their forms showed when they opened."""
    if isinstance(value, str):
        shown = "text:" + value
    else:
        shown = "times:" + ",".join(str(int(t.timestamp())) if t else "" for t in (value, other))
    return hashlib.sha256(shown.encode()).hexdigest()[:16]


def read_shown(notes: str) -> dict[str, str] | None:
    """The form's digests of what it showed (`postmortem_modal` writes them); None for a
    form without them, whose every field is then saved as submitted."""
    digests = notes.split(",") if notes else []
    if len(digests) != len(SHOWN_FIELDS):
        return None
    return dict(zip(SHOWN_FIELDS, digests, strict=True))


class PostmortemInput(BaseModel):
    root_cause: str = Field(default="", max_length=3000)
    resolution: str = Field(default="", max_length=3000)
    prevention: str = Field(default="", max_length=3000)
    lessons: str = Field(default="", max_length=3000)
    affected_users: str = Field(default="", max_length=1000)
    data_impact: str = Field(default="", max_length=1000)
    started_at: datetime | None = None
    detected_at: datetime | None = None
    action_items: list[NewActionItem] = Field(default_factory=list)
    # What the form showed when it opened ({field: shown_digest}); None: save every field.
    shown: dict[str, str] | None = None

    model_config = {"arbitrary_types_allowed": True}

    def edited(self, name: str) -> bool:
        """Whether the submitter changed this field (of SHOWN_FIELDS) from what they saw."""
        if self.shown is None or name not in self.shown:
            return True
        if name == IMPACT_TIMES:
            return shown_digest(self.started_at, self.detected_at) != self.shown[name]
        return shown_digest(str(getattr(self, name))) != self.shown[name]


class PostmortemFormErrors(ValueError):
    """Per-field problems: {block_id: message}, shown beside the fields."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _due(day: str, calendar: Calendar) -> datetime:
    """A due date means the end of that working day in the team's time zone."""
    picked = date.fromisoformat(day)
    return datetime.combine(picked, calendar.day_end, tzinfo=calendar.zone).astimezone(UTC)


def _when(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    return datetime.fromtimestamp(int(value), UTC)


def parse_postmortem_form(
    values: dict[str, Any], *, calendar: Calendar, now: datetime, shown: str = ""
) -> PostmortemInput:
    """Validate the submitted form: `values` is {block_id: raw value}, `shown` the digests
    of what it showed (its notes' `shown`).

    Texts may hold no control character or bidi override (newlines, made `\\n`, and tabs
    aside; an action item is one line). An action item row needs all three of text, owner
    and due date, or none; a detection time needs the time the impact started (to measure
    time to detect), and comes after it.
    Raises PostmortemFormErrors.
    """
    errors: dict[str, str] = {}
    texts: dict[str, str] = {}
    for name in TEXT_FIELDS:
        texts[name] = normalize_newlines(str(values.get(name) or "")).strip()
        problem = forbidden_character(texts[name], multiline=True)
        if problem is not None:
            errors[name] = f"The {_NAMES[name]} {problem}."
    moments: dict[str, datetime | None] = {}
    for name in ("started_at", "detected_at"):
        try:
            moments[name] = _when(values.get(name))
        except (TypeError, ValueError, OverflowError, OSError):
            # Slack's picker sends seconds since 1970; anything else is no time at all.
            errors[name] = "Choose a date and time."
            moments[name] = None
    started, detected = moments["started_at"], moments["detected_at"]
    if detected is not None and started is None and "started_at" not in errors:
        errors["started_at"] = "Give when the impact started too, to measure time to detect."
    if started is not None and started > now:
        errors["started_at"] = "The start of the impact cannot be in the future."
    if detected is not None and detected > now:
        errors["detected_at"] = "Detection cannot be in the future."
    elif started is not None and detected is not None and detected < started:
        errors["detected_at"] = "Detection cannot come before the impact started."
    items: list[NewActionItem] = []
    for row in range(ACTION_ROWS):
        text = str(values.get(f"item_{row}_text") or "").strip()
        owner = str(values.get(f"item_{row}_owner") or "")
        day = str(values.get(f"item_{row}_due") or "")
        if not (text or owner or day):
            continue
        problem = forbidden_character(text)
        if not text:
            errors[f"item_{row}_text"] = "Say what is to be done."
        elif problem is not None:
            errors[f"item_{row}_text"] = f"The action item contains {problem}."
        elif len(text) > 500:
            errors[f"item_{row}_text"] = "Keep an action item under 500 characters."
        if not is_user_id(owner):  # U…, or W… for a person on Enterprise Grid
            errors[f"item_{row}_owner"] = "Choose who owns it."
        try:
            due = _due(day, calendar)
        except (ValueError, OverflowError):  # OverflowError: past 9999-12-31 in UTC
            errors[f"item_{row}_due"] = "Choose a due date."
            continue
        if due < now:
            errors[f"item_{row}_due"] = "The due date has passed; choose a later one."
        if f"item_{row}_text" not in errors and f"item_{row}_owner" not in errors:
            items.append(NewActionItem(text=text, owner=owner, due_at=due))
    if errors:
        raise PostmortemFormErrors(errors)
    return PostmortemInput(
        **texts,
        started_at=started,
        detected_at=detected,
        action_items=items,
        shown=read_shown(shown),
    )


__all__ = [
    "ACTION_ROWS",
    "IMPACT_TIMES",
    "SHOWN_FIELDS",
    "PostmortemFormErrors",
    "PostmortemInput",
    "parse_postmortem_form",
    "read_shown",
    "shown_digest",
]
