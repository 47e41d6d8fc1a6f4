"""manifest.yml against Slack's own manifest schema, and against what the code really calls."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import yaml

from bot.console.workspace.documented import DOCUMENTED
from tests.harness import SCHEMAS, openapi_spec

ROOT = Path(__file__).resolve().parents[2]
CODE_DIRS = [ROOT / "bot", ROOT / "commands"]
# AsyncWebClient methods look like client.chat_postMessage(...) -> chat.postMessage
# The 2020 spec names some scopes the classic way; these are their granular bot-token names.
_GRANULAR = {
    "chat:write:bot": "chat:write",
    "chat:write:user": "chat:write",
    "channels:write": "channels:manage",
    "groups:write": "groups:write",
}
_CALL = re.compile(
    r"\.(chat|conversations|pins|reactions|users|usergroups|views|files|apps|auth)_(\w+)\("
)


def _manifest() -> dict:
    return yaml.safe_load((ROOT / "manifest.yml").read_text())


def _methods_called() -> set[str]:
    methods = set()
    for folder in CODE_DIRS:
        for path in folder.rglob("*.py"):
            if "workspace" in path.relative_to(ROOT).parts:
                continue  # the Slack double answers these methods; it does not call them
            for family, name in _CALL.findall(path.read_text()):
                methods.add(f"{family}.{name}")
    return methods


def test_manifest_is_valid_against_slack_schema() -> None:
    schema = json.loads((SCHEMAS / "manifest.schema.2.0.0.json").read_text())
    jsonschema.validate(_manifest(), schema)


def test_every_slash_command_is_declared() -> None:
    declared = {c["command"] for c in _manifest()["features"]["slash_commands"]}
    registered = set()
    for path in (ROOT / "commands").rglob("*.py"):
        registered |= set(re.findall(r"""app\.command\(\s*["'](/[a-z-]+)["']""", path.read_text()))
    assert registered, "no slash command found in commands/"
    assert registered == declared


def test_every_web_api_method_called_has_its_scope() -> None:
    scopes = set(_manifest()["oauth_config"]["scopes"]["bot"])
    paths = openapi_spec()["paths"]
    methods = _methods_called()
    assert "chat.postMessage" in methods
    assert "files.getUploadURLExternal" in methods  # the report and chart uploads
    missing = {}
    for method in sorted(methods):
        operation = paths.get(f"/{method}", {}).get("post") or paths.get(f"/{method}", {}).get(
            "get"
        )
        if operation is None:
            # Newer than the 2020 spec: the double writes down Slack's documented scope.
            documented = DOCUMENTED.get(method)
            if documented is not None and documented.scope not in scopes:
                missing[method] = [documented.scope]
            continue
        needed = [
            _GRANULAR.get(scope, scope)
            for requirement in operation.get("security", [])
            for scope in requirement.get("slackAuth", [])
            if scope != "none"  # views.open, views.update...: no scope needed
        ]
        if needed and not scopes.intersection(needed):
            missing[method] = needed
    assert missing == {}, f"manifest lacks a scope for: {missing}"


def test_interactivity_and_events_point_at_the_events_endpoint() -> None:
    settings = _manifest()["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"].endswith("/slack/events")
    assert settings["event_subscriptions"]["request_url"].endswith("/slack/events")
