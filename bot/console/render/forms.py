"""Modals as questions: their input fields, prompts, answers and Slack's `state.values`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.console.render.controls import Option, options_of
from bot.console.render.messages import indent, render_blocks
from bot.console.render.text import NO_NAMES, PLAIN, Names, Style, text_of
from bot.slack_ids import is_channel_id, is_user_id

# ----- modals ------------------------------------------------------------------------------

# Element types whose answer is typed as text.
_TEXT_INPUTS = {
    "plain_text_input": "value",
    "number_input": "value",
    "email_text_input": "value",
    "url_text_input": "value",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
    "datetimepicker": "selected_date_time",
    "users_select": "selected_user",
    "conversations_select": "selected_conversation",
    "channels_select": "selected_channel",
}
_MULTI_TEXT_INPUTS = {
    "multi_users_select": "selected_users",
    "multi_conversations_select": "selected_conversations",
    "multi_channels_select": "selected_channels",
}
_DATE_TIME = "%Y-%m-%d %H:%M"
_FORMATS = {"datepicker": "%Y-%m-%d", "timepicker": "%H:%M", "datetimepicker": _DATE_TIME}
_ID_CHECKS: dict[str, Callable[[object], bool]] = {
    "users_select": is_user_id,
    "multi_users_select": is_user_id,
    "conversations_select": is_channel_id,
    "multi_conversations_select": is_channel_id,
    "channels_select": is_channel_id,
    "multi_channels_select": is_channel_id,
}
_CHOICE_INPUTS = {"static_select": False, "radio_buttons": False}
_MULTI_CHOICE_INPUTS = {"multi_static_select", "checkboxes"}
_USER_PICKERS = frozenset({"users_select", "multi_users_select"})
_HINTS = {
    "number_input": "a number",
    "email_text_input": "an email address",
    "url_text_input": "a URL",
    "datepicker": "YYYY-MM-DD",
    "timepicker": "HH:MM",
    "datetimepicker": "YYYY-MM-DD HH:MM, in UTC",
    "users_select": "a user ID such as U0BOB",
    "conversations_select": "a channel ID such as C0123",
    "channels_select": "a channel ID such as C0123",
    "multi_users_select": "user IDs, comma-separated",
    "multi_conversations_select": "channel IDs, comma-separated",
    "multi_channels_select": "channel IDs, comma-separated",
}


@dataclass(frozen=True)
class InputField:
    """One input block of a modal, as the console asks for it."""

    block_id: str
    action_id: str
    kind: str
    label: str
    optional: bool = False
    hint: str = ""
    placeholder: str = ""
    multiline: bool = False
    initial: str = ""  # as the user would type it (option numbers for choices)
    options: tuple[Option, ...] = ()

    @property
    def is_choice(self) -> bool:
        return self.kind in _CHOICE_INPUTS or self.kind in _MULTI_CHOICE_INPUTS

    @property
    def is_multi(self) -> bool:
        return self.kind in _MULTI_CHOICE_INPUTS or self.kind in _MULTI_TEXT_INPUTS

    @property
    def supported(self) -> bool:
        return self.kind in _TEXT_INPUTS or self.kind in _MULTI_TEXT_INPUTS or self.is_choice


def _initial(element: Mapping[str, Any], options: Sequence[Option]) -> str:
    kind = element.get("type", "")
    values = [o.value for o in options]

    def index_of(option: Any) -> str:
        value = option.get("value") if isinstance(option, Mapping) else None
        return str(values.index(value) + 1) if value in values else ""

    if kind in _CHOICE_INPUTS:
        return index_of(element.get("initial_option"))
    if kind in _MULTI_CHOICE_INPUTS:
        picked = [index_of(o) for o in element.get("initial_options") or []]
        return ",".join(p for p in picked if p)
    for key in (
        "initial_value",
        "initial_date",
        "initial_time",
        "initial_user",
        "initial_conversation",
        "initial_channel",
    ):
        if element.get(key):
            return str(element[key])
    if isinstance(element.get("initial_date_time"), int):
        return datetime.fromtimestamp(element["initial_date_time"], UTC).strftime(_DATE_TIME)
    for key in ("initial_users", "initial_conversations", "initial_channels"):
        if element.get(key):
            return ",".join(element[key])
    return ""


def input_fields(view: Mapping[str, Any], names: Names = NO_NAMES) -> list[InputField]:
    """The input blocks of a modal, in order."""
    fields: list[InputField] = []
    for n, block in enumerate(view.get("blocks") or []):
        if not isinstance(block, Mapping) or block.get("type") != "input":
            continue
        element = block.get("element") or {}
        options = tuple(options_of(element, names))
        fields.append(
            InputField(
                block_id=str(block.get("block_id") or f"input_{n}"),
                action_id=str(element.get("action_id") or f"action_{n}"),
                kind=str(element.get("type", "")),
                label=text_of(block.get("label"), names, PLAIN),
                optional=bool(block.get("optional")),
                hint=text_of(block.get("hint"), names, PLAIN),
                placeholder=text_of(element.get("placeholder"), names, PLAIN),
                multiline=bool(element.get("multiline")),
                initial=_initial(element, options),
                options=options,
            )
        )
    return fields


def render_view(
    view: Mapping[str, Any], *, names: Names = NO_NAMES, style: Style = PLAIN
) -> list[str]:
    """A modal's frame and its non-input blocks (inputs are asked one by one)."""
    title = text_of(view.get("title"), names, style.without_color())
    lines = [style.bold(f"┌ {title}" if style.unicode else f"+ {title}")]
    others = [b for b in view.get("blocks") or [] if b.get("type") != "input"]
    # Buttons inside a modal are not operable here: number them 0 so nobody types them.
    body = render_blocks(others, names=names, style=style, number=lambda _b, _a: 0)
    lines += indent(body.lines, "│ " if style.unicode else "| ")
    close = text_of(view.get("close"), names, PLAIN) or "Cancel"
    if not view.get("submit"):  # Slack offers only its close button: nothing is sent
        lines.append(style.dim(f"(nothing to submit: [{close}] only)"))
        return lines
    submit = text_of(view.get("submit"), names, PLAIN)
    lines.append(style.dim(f"(answer each field; it is sent as [{submit}]; :cancel is [{close}])"))
    return lines


def field_prompt(field_: InputField, style: Style = PLAIN) -> list[str]:
    """What to print before reading a field's answer; the last line is the prompt itself."""
    lines: list[str] = []
    need = "optional" if field_.optional else "required"
    # The placeholder reads as guidance, so it goes beside the label, not into the prompt
    # where it would look like a default.
    detail = field_.hint or field_.placeholder or _HINTS.get(field_.kind, "")
    heading = f"{style.bold(field_.label)} ({need})"
    if detail:
        heading += style.dim(f": {detail}")
    lines.append(heading)
    if field_.is_choice:
        for n, option in enumerate(field_.options, 1):
            lines.append(f"  {n}) {option.label}")
        how = "numbers, comma-separated" if field_.is_multi else "a number"
        lines.append(style.dim(f"  pick {how}" + (", or leave empty" if field_.optional else "")))
    elif field_.multiline:
        lines.append(style.dim("  several lines; an empty line ends the text"))
    if not field_.supported:
        lines.append(style.dim(f"  ({field_.kind}: type the value as Slack would send it)"))
    default = f" [{field_.initial}]" if field_.initial else ""
    lines.append(f"  {field_.label}{default}> ")
    return lines


def _pick(field_: InputField, answer: str) -> tuple[list[Option], str | None]:
    picked: list[Option] = []
    for part in [p.strip() for p in answer.split(",")] if field_.is_multi else [answer.strip()]:
        if not part:
            continue
        match = None
        if part.isascii() and part.isdigit() and 1 <= int(part) <= len(field_.options):
            match = field_.options[int(part) - 1]
        else:
            lowered = part.lower()
            match = next(
                (o for o in field_.options if lowered in (o.label.lower(), o.value.lower())), None
            )
        if match is None:
            return [], f"'{_quoted(part)}' is not one of the choices (1-{len(field_.options)})"
        picked.append(match)
    return picked, None


def _quoted(answer: str, limit: int = 40) -> str:
    """An answer quoted back in a refusal: a huge paste is named by its start, not repeated."""
    return answer if len(answer) <= limit else answer[: limit - 1] + "…"


def state_value(field_: InputField, answer: str) -> tuple[dict[str, Any] | None, str | None]:
    """The `state.values` leaf Slack would send for `answer`, or an error to show.

    An empty answer takes the field's initial value; empty and optional sends an empty value,
    empty and required is an error (Slack would not let the modal submit).
    """
    answer = answer.strip() or field_.initial
    if not answer and not field_.optional:
        return None, f"{field_.label} is required"
    kind = field_.kind
    if field_.is_choice:
        picked, error = _pick(field_, answer)
        if error:
            return None, error
        raw = [dict(o.raw) for o in picked]
        if field_.is_multi:
            return {"type": kind, "selected_options": raw}, None
        return {"type": kind, "selected_option": raw[0] if raw else None}, None
    if kind in _USER_PICKERS:
        # Slack's picker offers people as @name: a person typed as a mention is that person.
        answer = ",".join(p.strip().removeprefix("@") for p in answer.split(","))
    if kind in _ID_CHECKS:
        wrong = [p for p in answer.split(",") if p.strip() and not _ID_CHECKS[kind](p.strip())]
        if wrong:  # Slack's menus offer only real IDs
            return None, f"'{_quoted(wrong[0].strip())}' is not {_HINTS[kind]}"
    if kind in _MULTI_TEXT_INPUTS:
        values = [p.strip() for p in answer.split(",") if p.strip()]
        return {"type": kind, _MULTI_TEXT_INPUTS[kind]: values}, None
    key = _TEXT_INPUTS.get(kind, "value")
    value: str | None = answer or None
    if value is not None and kind in _FORMATS:
        # Slack's pickers send only a real date or time, and a date-time as seconds.
        try:
            moment = datetime.strptime(value, _FORMATS[kind])
        except ValueError:
            return None, f"'{_quoted(value)}' is not {_HINTS[kind]}"
        if kind == "datetimepicker":
            return {"type": kind, key: int(moment.replace(tzinfo=UTC).timestamp())}, None
    if kind == "number_input" and value is not None:
        try:
            float(value)
        except ValueError:
            return None, f"'{_quoted(value)}' is not a number"
    return {"type": kind, key: value}, None


def field_names(fields: Sequence[InputField]) -> dict[str, str]:
    """{block_id: name to show}: the label, or for a label several fields share (each action
    item row's "Owner") which one of them it is, and the field it follows with a label of its
    own; Slack shows an error under its field, the console only by name."""
    counts: dict[str, int] = {}
    for f in fields:
        counts[f.label] = counts.get(f.label, 0) + 1
    names: dict[str, str] = {}
    seen: dict[str, int] = {}
    after = ""
    for f in fields:
        if counts[f.label] == 1:
            names[f.block_id] = f.label
            after = f.label
            continue
        seen[f.label] = seen.get(f.label, 0) + 1
        which = f"{seen[f.label]} of {counts[f.label]}" + (f", after {after}" if after else "")
        names[f.block_id] = f"{f.label} ({which})"
    return names


def view_errors(errors: Mapping[str, Any], fields: Sequence[InputField]) -> list[str]:
    """`response_action: errors` as lines: `Label: message` for every field named; a label
    several fields share says which of them."""
    names = field_names(fields)
    return [f"{names.get(block_id, block_id)}: {message}" for block_id, message in errors.items()]
