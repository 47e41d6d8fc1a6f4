"""Payload checks for the Slack test double: Block Kit, views and the Web API OpenAPI spec.

Slack answers `invalid_blocks` for payloads it cannot render; the double must refuse the same
payloads, or a test passes while production fails. Each check returns readable problems
(empty list = fine); the double turns them into `invalid_blocks` and records them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

# Slack's documented limits (Block Kit reference: blocks, text objects, elements).
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
SECTION_TEXT_MAX = 3000
SECTION_FIELDS_MAX = 10
SECTION_FIELD_TEXT_MAX = 2000
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
MODAL_TITLE_MAX = 24
MESSAGE_TEXT_MAX = 40000
TEXT_INPUT_MAX = 3000  # a plain_text_input's min_length and max_length

# Text objects that Slack only accepts as plain_text (mrkdwn there is invalid_blocks).
_PLAIN_TEXT_ONLY = {
    "button": ("text",),
    "header": ("text",),
    "input": ("label", "hint"),
    "confirm": ("title", "confirm", "deny"),
    "static_select": ("placeholder",),
    "users_select": ("placeholder",),
    "multi_users_select": ("placeholder",),
    "conversations_select": ("placeholder",),
    "channels_select": ("placeholder",),
    "plain_text_input": ("placeholder",),
}

# What Slack reads as a control sequence in mrkdwn: mentions, channels, broadcasts, user groups,
# dates and links. Any other `<...>`, or a `<` never closed, is text the bot forgot to escape
# (`<service>` shows as a link to "service") or a sequence cut in half by a truncation.
_CONTROL = re.compile(
    r"(?:@[A-Z0-9]+|#[A-Z0-9]+|!(?:channel|here|everyone|group)|!subteam\^[A-Z0-9]+"
    r"|!date\^-?\d+\^[^|]*(?:\^[^|]*)?\|.*|(?:https?://|mailto:)[^|\s]+)(?:\|.*)?",
    re.DOTALL,
)
_ANGLED = re.compile(r"<([^<>]*)(>?)")

# slack_sdk's model classes log "unknown block" warnings; the double reports them instead.
logging.getLogger("slack_sdk.models.blocks.blocks").setLevel(logging.ERROR)


def check_message(payload: Mapping[str, Any]) -> list[str]:
    """Problems in a message payload (chat.postMessage/postEphemeral/update, response_url)."""
    blocks = payload.get("blocks")
    if blocks is None or blocks == []:
        return []
    problems = check_blocks(blocks, max_blocks=MAX_MESSAGE_BLOCKS)
    text = payload.get("text")
    if not isinstance(text, str) or not text.strip():
        # Slack renders nothing in notifications and screen readers without it.
        problems.append("message has blocks but no top-level `text` (notification fallback)")
    return problems


def check_markup(payload: Mapping[str, Any]) -> list[str]:
    """Mrkdwn that Slack accepts but shows wrong: a `<...>` it does not read as a control
    sequence, in a message's top-level `text` (mrkdwn unless `mrkdwn: false`), its blocks or
    a view's blocks. Recorded as violations, not refused: Slack posts such text as it reads it.
    """
    problems: list[str] = []
    text = payload.get("text")
    if isinstance(text, str) and payload.get("mrkdwn") is not False:
        problems += [f"text: {p}" for p in markup_problems(text)]
    view = payload.get("view")
    for blocks in (payload.get("blocks"), view.get("blocks") if isinstance(view, dict) else None):
        for path, node in _typed_nodes(blocks, "blocks") if isinstance(blocks, list) else ():
            if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
                problems += [f"{path}: {p}" for p in markup_problems(node["text"])]
    return problems


def markup_problems(text: str) -> list[str]:
    """`<...>` in mrkdwn that Slack does not read as a control sequence (see _CONTROL)."""
    problems = []
    for match in _ANGLED.finditer(text):
        inner, closed = match.group(1), match.group(2)
        if not closed:
            problems.append(f"unclosed `<` in mrkdwn: {text[match.start() : match.start() + 40]!r}")
        elif not _CONTROL.fullmatch(inner):
            problems.append(f"`<{inner[:40]}>` in mrkdwn is not a Slack control sequence")
    return problems


def check_view(view: Any) -> list[str]:
    """Problems in a `view` payload (views.open/update/push/publish)."""
    if not isinstance(view, dict):
        return [f"view must be a JSON object, got {type(view).__name__}"]
    problems: list[str] = []
    view_type = view.get("type")
    if view_type not in ("modal", "home"):
        problems.append(f"view type must be 'modal' or 'home', got {view_type!r}")
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        problems.append("view needs a `blocks` array")
        return problems
    problems += check_blocks(blocks, max_blocks=MAX_VIEW_BLOCKS)
    if view_type == "modal":
        problems += _check_modal_frame(view, blocks)
    if problems:
        return problems
    # Only when the blocks are fine, so one mistake is reported once.
    return _check_with_model("view", view, lambda: View(**view), skip_keys={"blocks"})


def check_blocks(blocks: Any, *, max_blocks: int) -> list[str]:
    """Problems in a list of Block Kit blocks (slack_sdk models + Slack's limits)."""
    if not isinstance(blocks, list):
        return [f"blocks must be a JSON array, got {type(blocks).__name__}"]
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(f"{len(blocks)} blocks; Slack allows at most {max_blocks}")
    seen_block_ids: set[str] = set()
    for index, block in enumerate(blocks):
        where = f"block[{index}]"
        if not isinstance(block, dict):
            problems.append(f"{where} must be an object, got {type(block).__name__}")
            continue
        where = f"block[{index}] ({block.get('type')})"
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            if block_id in seen_block_ids:
                problems.append(f"{where} repeats block_id {block_id!r}")
            seen_block_ids.add(block_id)
        problems += [f"{where}: {p}" for p in _check_limits(block)]
        problems += [f"{where}: {p}" for p in _check_block_model(block)]
    return problems


def _check_block_model(block: dict[str, Any]) -> list[str]:
    def build() -> Block:
        parsed = Block.parse(block)
        if parsed is None:
            raise ValueError(f"unknown block type {block.get('type')!r}")
        return parsed

    return _check_with_model("block", block, build)


def _check_with_model(
    kind: str,
    payload: dict[str, Any],
    build: Callable[[], Any],
    skip_keys: frozenset[str] | set[str] = frozenset(),
) -> list[str]:
    """Parse with slack_sdk's model, validate, and compare the round trip with the input.

    The round trip catches what the models silently drop: misspelt keys (`acton_id`) and
    unknown text types, both of which Slack rejects.
    """
    try:
        model = build()
        model.validate_json()
        rendered = model.to_dict()  # validates nested elements too
    except Exception as exc:  # slack_sdk raises several types for malformed input
        return [f"{kind} rejected by slack_sdk models: {exc}"]
    return _round_trip_diff(payload, rendered, path="", skip_keys=skip_keys)


def _round_trip_diff(
    original: Any, rendered: Any, *, path: str, skip_keys: frozenset[str] | set[str] = frozenset()
) -> list[str]:
    if isinstance(original, dict):
        if not isinstance(rendered, dict):
            return [f"{path or 'value'} is not an object Slack understands"]
        problems: list[str] = []
        for key, value in original.items():
            if key in skip_keys:
                continue
            if key not in rendered:
                if value is None or value == [] or value == {}:
                    continue  # empty values are dropped harmlessly
                problems.append(f"unknown or invalid field {path + key!r}")
                continue
            problems += _round_trip_diff(value, rendered[key], path=f"{path}{key}.")
        return problems
    if isinstance(original, list):
        if not isinstance(rendered, list) or len(original) != len(rendered):
            return [f"{path.rstrip('.')} could not be parsed as a list of valid items"]
        problems = []
        for index, (item, out) in enumerate(zip(original, rendered, strict=True)):
            problems += _round_trip_diff(item, out, path=f"{path.rstrip('.')}[{index}].")
        return problems
    if original != rendered:
        return [f"field {path.rstrip('.')!r}: {original!r} is not valid here"]
    return []


def _check_limits(block: dict[str, Any]) -> list[str]:
    """Slack's limits, checked explicitly so they hold whatever slack_sdk version is installed."""
    problems: list[str] = []
    if block.get("type") == "section":
        text = _text_of(block.get("text"))
        if text is not None and len(text) > SECTION_TEXT_MAX:
            problems.append(f"section text is {len(text)} characters; limit {SECTION_TEXT_MAX}")
        fields = block.get("fields")
        if isinstance(fields, list):
            if len(fields) > SECTION_FIELDS_MAX:
                problems.append(f"section has {len(fields)} fields; limit {SECTION_FIELDS_MAX}")
            for i, field in enumerate(fields):
                field_text = _text_of(field)
                if field_text is not None and len(field_text) > SECTION_FIELD_TEXT_MAX:
                    problems.append(f"section field[{i}] exceeds {SECTION_FIELD_TEXT_MAX} chars")
    seen_action_ids: set[str] = set()
    for path, node in _typed_nodes(block, "block"):
        node_type = node.get("type")
        action_id = node.get("action_id")
        if isinstance(action_id, str):
            # Slack requires action_ids to be unique within their block.
            if action_id in seen_action_ids:
                problems.append(f"{path} repeats action_id {action_id!r}")
            seen_action_ids.add(action_id)
        if node_type == "button":
            text = _text_of(node.get("text"))
            if text is not None and len(text) > BUTTON_TEXT_MAX:
                problems.append(f"{path} text is {len(text)} characters; limit {BUTTON_TEXT_MAX}")
            value = node.get("value")
            if isinstance(value, str) and len(value) > BUTTON_VALUE_MAX:
                problems.append(f"{path} value is {len(value)} chars; limit {BUTTON_VALUE_MAX}")
        if node_type == "plain_text_input":
            problems += [f"{path}: {p}" for p in _text_input_problems(node)]
        for key in _PLAIN_TEXT_ONLY.get(str(node_type), ()):
            text_object = node.get(key)
            if isinstance(text_object, dict) and text_object.get("type") != "plain_text":
                problems.append(f"{path}.{key} must be plain_text, not {text_object.get('type')!r}")
        confirm = node.get("confirm")
        if isinstance(confirm, dict):
            for key in _PLAIN_TEXT_ONLY["confirm"]:
                text_object = confirm.get(key)
                if isinstance(text_object, dict) and text_object.get("type") != "plain_text":
                    problems.append(f"{path}.confirm.{key} must be plain_text")
    return problems


def _text_input_problems(element: dict[str, Any]) -> list[str]:
    """A plain_text_input's lengths: min_length 0-3,000, max_length 1-3,000 (Block Kit
    reference), and no initial_value the input itself would refuse on submit."""
    problems: list[str] = []
    low, high = element.get("min_length"), element.get("max_length")
    if isinstance(low, int) and not 0 <= low <= TEXT_INPUT_MAX:
        problems.append(f"min_length {low} is outside 0-{TEXT_INPUT_MAX}")
    if isinstance(high, int) and not 1 <= high <= TEXT_INPUT_MAX:
        problems.append(f"max_length {high} is outside 1-{TEXT_INPUT_MAX}")
    initial = element.get("initial_value")
    if isinstance(initial, str) and isinstance(high, int) and len(initial) > high:
        problems.append(f"initial_value is {len(initial)} characters; max_length {high}")
    return problems


def _check_modal_frame(view: dict[str, Any], blocks: list[Any]) -> list[str]:
    problems: list[str] = []
    title = _text_of(view.get("title"))
    if title is None:
        problems.append("modal needs a plain_text `title`")
    elif len(title) > MODAL_TITLE_MAX:
        problems.append(f"modal title is {len(title)} characters; limit {MODAL_TITLE_MAX}")
    for key in ("title", "submit", "close"):
        text_object = view.get(key)
        if isinstance(text_object, dict) and text_object.get("type") != "plain_text":
            problems.append(f"modal {key} must be plain_text")
    has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
    if has_input and view.get("submit") is None:
        # Slack refuses a modal with inputs but no way to submit them.
        problems.append("modal with input blocks needs a `submit` button")
    return problems


def _typed_nodes(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every nested object that has a `type`, with a readable path (block elements, texts)."""
    if isinstance(node, dict):
        if "type" in node and path != "block":
            yield path, node
        for key, value in node.items():
            yield from _typed_nodes(value, f"{path}.{key}" if path != "block" else key)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _typed_nodes(item, f"{path}[{index}]")


def _text_of(text_object: Any) -> str | None:
    if isinstance(text_object, dict) and isinstance(text := text_object.get("text"), str):
        return text
    return None


class OpenApiChecker:
    """Checks calls against Slack's Web API OpenAPI (Swagger 2.0) spec.

    Only what the 2020 spec can vouch for: a method it describes must get its required
    parameters. Methods newer than the spec (files.getUploadURLExternal, ...) pass.
    """

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self._required: dict[str, set[str]] = {}
        for path, operations in spec.get("paths", {}).items():
            per_verb = [
                {
                    p["name"]
                    for p in op.get("parameters", [])
                    if p.get("required") and p.get("name") != "token"  # token: Authorization
                }
                for op in operations.values()
                if isinstance(op, dict)
            ]
            # A method described for several verbs needs only what all of them need.
            self._required[path.lstrip("/")] = set.intersection(*per_verb) if per_verb else set()

    def knows(self, method: str) -> bool:
        """True when the spec describes `method`."""
        return method in self._required

    def check(self, method: str, params: Mapping[str, Any]) -> list[str]:
        """Problems with a call: required parameters of a described method that are missing."""
        required = self._required.get(method)
        if required is None:
            return []
        missing = sorted(name for name in required if params.get(name) is None)
        return [f"openapi: {method} is missing required parameter {name!r}" for name in missing]
