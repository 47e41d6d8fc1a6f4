"""Arguments of Web API methods newer than the vendored 2020 OpenAPI spec, as Slack's method
reference pages document them, so the double checks these calls as strictly as the rest.

https://api.slack.com/methods/files.getUploadURLExternal and
https://api.slack.com/methods/files.completeUploadExternal (both: scope files:write).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class DocumentedMethod:
    required: frozenset[str]
    optional: frozenset[str]
    scope: str


DOCUMENTED = {
    "files.getUploadURLExternal": DocumentedMethod(
        required=frozenset({"filename", "length"}),
        optional=frozenset({"alt_txt", "snippet_type"}),
        scope="files:write",
    ),
    "files.completeUploadExternal": DocumentedMethod(
        required=frozenset({"files"}),
        optional=frozenset({"channel_id", "channels", "initial_comment", "thread_ts", "blocks"}),
        scope="files:write",
    ),
}


def check_documented(method: str, params: Mapping[str, Any]) -> list[str]:
    """Problems with a call to a documented method: missing, unknown or malformed arguments."""
    spec = DOCUMENTED.get(method)
    if spec is None:
        return []
    problems = [
        f"missing required argument {name!r}"
        for name in sorted(spec.required)
        if params.get(name) in (None, "")
    ]
    unknown = set(params) - spec.required - spec.optional
    problems += [f"unknown argument {name!r}" for name in sorted(unknown)]
    if method == "files.getUploadURLExternal" and not str(params.get("length", "")).isdigit():
        problems.append("length must be the file's size in bytes")
    if method == "files.completeUploadExternal":
        files = params.get("files")
        if not isinstance(files, list) or not all(
            isinstance(f, dict) and f.get("id") and set(f) <= {"id", "title"} for f in files
        ):
            problems.append("files must be a JSON array of {id, title}")
        if params.get("channel_id") and params.get("channels"):
            problems.append("give channel_id or channels, not both")
    return [f"documented: {method}: {p}" for p in problems]
