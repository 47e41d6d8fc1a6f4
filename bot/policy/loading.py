"""The policy file read into a Policy: YAML's safe loader (a key set twice refused), limits
on size, values and depth, and every error naming its place in the file with the line
when known (`severities.P1.ack_within: invalid duration '30 minutes'`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from bot.errors import ConfigError
from bot.policy.models import Policy


def default_policy_text() -> str:
    return resources.files("bot").joinpath("defaults/policy.yml").read_text()


def load_policy(path: str | Path | None = None) -> Policy:
    """Load and validate the policy; built-in defaults when `path` is None.

    Raises ConfigError whose message lists every problem, one per line, with its location.
    """
    if path is None:
        return parse_policy(default_policy_text(), source="<built-in policy>")
    file = Path(path)
    try:
        # Read no further than the cap: a huge file (or /dev/zero) is refused, not loaded.
        with file.open("rb") as stream:
            data = stream.read(MAX_POLICY_BYTES + 1)
        _check_length(len(data), source=str(file))
        text = data.decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read policy file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{file}: not a text file (YAML in UTF-8): byte {exc.object[exc.start]:#04x}"
            f" at offset {exc.start}"
        ) from None
    return parse_policy(text, source=str(file))


def parse_policy(text: str, *, source: str = "<policy>") -> Policy:
    """Validate policy YAML text; `source` names it in error messages."""
    data = _parse_yaml(text, source)
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the policy must be a mapping of settings")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        lines = _line_numbers(text)
        problems = [_describe(error, source, lines) for error in exc.errors()]
        raise ConfigError("\n".join(problems)) from None


def _check_length(size: int, source: str) -> None:
    if size > MAX_POLICY_BYTES:
        raise ConfigError(
            f"{source}: larger than a policy may be ({MAX_POLICY_BYTES // 1024} KiB);"
            " is this the right file?"
        )


class _PolicyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key set twice in one mapping: YAML keeps the last one,
    so a second `roles:` at the end of the file silently emptied the first one's lists
    (everyone a responder, nobody an approver) and check-config said OK."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[tuple[str, str], int] = {}
        for key_node, _ in node.value:
            # `<<: *base` then `key: value` overrides what is merged: that is what merging is for.
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = (key_node.tag, key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"'{key_node.value[:60]}' is set twice in one mapping (first at line"
                    f" {seen[key]}): YAML would keep only the last",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str, source: str) -> Any:
    _check_length(len(text), source)
    try:
        data = yaml.load(text, Loader=_PolicyLoader)  # a SafeLoader: no Python objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{source}: invalid YAML: nested too deeply") from None
    _check_size(data, source)
    return data


# A policy holds a few hundred values. YAML aliases can make a few lines stand for billions
# of them, or for a list that contains itself: validation would walk them for ever.
MAX_POLICY_VALUES = 100_000
MAX_POLICY_DEPTH = 64
# A file is parsed whole before its values can be counted: 12 MB of YAML took 100 s and
# 1.3 GB (past the Deployment's memory limit) before it was refused. The example policy with
# every setting is 8 KB; 512 KiB (about 6 s to parse at worst) holds a catalog of hundreds
# of services.
MAX_POLICY_BYTES = 512 * 1024


def _check_size(data: Any, source: str) -> None:
    """Refuse a document that expands beyond MAX_POLICY_VALUES values (aliases counted each
    time they are used), nests deeper than MAX_POLICY_DEPTH, or contains itself."""
    count = 0

    def walk(value: Any, ancestors: tuple[int, ...]) -> None:
        nonlocal count
        count += 1
        if count > MAX_POLICY_VALUES:
            raise ConfigError(
                f"{source}: the policy expands to more than {MAX_POLICY_VALUES:,} values"
                " (YAML aliases repeating one another?)"
            )
        if not isinstance(value, dict | list):
            return
        if id(value) in ancestors:
            raise ConfigError(f"{source}: a YAML alias refers to a value that contains it")
        if len(ancestors) >= MAX_POLICY_DEPTH:
            raise ConfigError(f"{source}: nested more than {MAX_POLICY_DEPTH} levels deep")
        inner = (*ancestors, id(value))
        for child in value.values() if isinstance(value, dict) else value:
            walk(child, inner)

    walk(data, ())


def _describe(error: ErrorDetails, source: str, lines: dict[tuple[str, ...], int]) -> str:
    loc = tuple(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown setting"
    elif error["type"] == "missing":
        message = "required setting is missing"
    where = ".".join(loc) or "(top level)"
    line = _nearest_line(loc, lines)
    prefix = f"{source}:{line}" if line else source
    return f"{prefix}: {where}: {message}"


def _nearest_line(loc: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> int | None:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _line_numbers(text: str) -> dict[tuple[str, ...], int]:
    """Map each key path in the YAML document to its (1-based) line."""
    found: dict[tuple[str, ...], int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return found

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = (*path, str(key.value))
                found[child] = key.start_mark.line + 1
                walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                child = (*path, str(index))
                found[child] = item.start_mark.line + 1
                walk(item, child)

    if root is not None:
        walk(root, ())
    return found
