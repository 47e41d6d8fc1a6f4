"""Views in the Slack double: modals (views.open, push, update) and App Homes (views.publish)."""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from bot.console.workspace.api import ApiError, as_flag, require
from bot.console.workspace.directory import Directory
from bot.console.workspace.team import Team

MAX_MODAL_STACK = 3


class Surfaces:
    """Views by ID, each person's App Home, the open modal stacks and the used trigger_ids.

    A method named after a Web API method (`views_open`) answers it: the success body
    without `ok`, or ApiError.
    """

    def __init__(
        self,
        team: Team,
        directory: Directory,
        *,
        trigger_id_ttl: float | None,
        wall_clock: Callable[[], float],
    ) -> None:
        self.team = team
        self.directory = directory
        self.trigger_id_ttl = trigger_id_ttl
        self._wall_clock = wall_clock  # trigger_ids are minted with the wall clock
        self.views: dict[str, dict[str, Any]] = {}
        self._home_views: dict[str, str] = {}  # user -> view id
        self._modal_stacks: list[list[str]] = []  # each: root view id first
        self._used_triggers: set[str] = set()

    def home_view_id(self, user_id: str) -> str | None:
        """The ID of the App Home view last published for `user_id`, if any."""
        return self._home_views.get(user_id)

    def _use_trigger(self, params: Mapping[str, Any]) -> None:
        trigger_id = str(require(params, "trigger_id"))
        if trigger_id in self._used_triggers:
            raise ApiError("exchanged_trigger_id")
        minted_ms = trigger_id.split(".", 1)[0]
        # Only triggers minted by bot.slack.requests carry their birth time (13-digit ms).
        if self.trigger_id_ttl is not None and len(minted_ms) == 13 and minted_ms.isdigit():
            if self._wall_clock() - int(minted_ms) / 1000 > self.trigger_id_ttl:
                raise ApiError("expired_trigger_id")
        self._used_triggers.add(trigger_id)

    def _view_object(
        self, view: Mapping[str, Any], view_id: str, root_id: str, previous: str | None
    ) -> dict[str, Any]:
        view_type = view.get("type", "modal")
        body: dict[str, Any] = {
            "id": view_id,
            "team_id": self.team.team_id,
            "type": view_type,
            "blocks": copy.deepcopy(view.get("blocks", [])),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{self.team.now()}.{secrets.token_hex(4)}",
            "clear_on_close": as_flag(view.get("clear_on_close", False)),
            "notify_on_close": as_flag(view.get("notify_on_close", False)),
            "root_view_id": root_id,
            "previous_view_id": previous,
            "app_id": self.team.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team.team_id,
            "bot_id": self.team.bot_id,
        }
        for key in ("title", "submit", "close"):
            body[key] = copy.deepcopy(view.get(key))
        return body

    def _check_external_id(self, view: Mapping[str, Any], keep: str | None = None) -> None:
        external_id = view.get("external_id")
        if external_id and any(
            v["external_id"] == external_id and v["id"] != keep for v in self.views.values()
        ):
            raise ApiError("duplicate_external_id")

    def views_open(self, params: Mapping[str, Any]) -> dict[str, Any]:
        view = require(params, "view")
        self._use_trigger(params)
        self._check_external_id(view)
        view_id = self.team.new_id("V")
        self.views[view_id] = self._view_object(view, view_id, view_id, None)
        self._modal_stacks.append([view_id])
        return {"view": copy.deepcopy(self.views[view_id])}

    def views_push(self, params: Mapping[str, Any]) -> dict[str, Any]:
        view = require(params, "view")
        self._use_trigger(params)
        if not self._modal_stacks:
            raise ApiError("invalid_arguments", response_metadata={"messages": ["no open modal"]})
        stack = self._modal_stacks[-1]  # the modal the user is looking at
        if len(stack) >= MAX_MODAL_STACK:
            raise ApiError("push_limit_reached")
        self._check_external_id(view)
        view_id = self.team.new_id("V")
        self.views[view_id] = self._view_object(view, view_id, stack[0], stack[-1])
        stack.append(view_id)
        return {"view": copy.deepcopy(self.views[view_id])}

    def views_update(self, params: Mapping[str, Any]) -> dict[str, Any]:
        view = require(params, "view")
        view_id = params.get("view_id")
        external_id = params.get("external_id")
        if not view_id and not external_id:
            raise ApiError("invalid_arguments", response_metadata={"messages": ["view_id"]})
        current = self.views.get(str(view_id)) if view_id else None
        if current is None and external_id:
            matches = (v for v in self.views.values() if v["external_id"] == external_id)
            current = next(matches, None)
        if current is None:
            raise ApiError("not_found")
        if params.get("hash") and params["hash"] != current["hash"]:
            raise ApiError("hash_conflict")  # someone updated it since the caller looked
        self._check_external_id(view, keep=current["id"])
        updated = self._view_object(
            view, current["id"], current["root_view_id"], current["previous_view_id"]
        )
        self.views[current["id"]] = updated
        return {"view": copy.deepcopy(updated)}

    def views_publish(self, params: Mapping[str, Any]) -> dict[str, Any]:
        view = require(params, "view")
        user_id = str(require(params, "user_id"))
        if not self.directory.user_exists(user_id):
            raise ApiError("user_not_found")
        if view.get("type") != "home":
            raise ApiError("invalid_arguments", response_metadata={"messages": ["type: home"]})
        view_id = self._home_views.get(user_id) or self.team.new_id("V")
        current = self.views.get(view_id)
        if current and params.get("hash") and params["hash"] != current["hash"]:
            raise ApiError("hash_conflict")
        self._home_views[user_id] = view_id
        self.views[view_id] = self._view_object(view, view_id, view_id, None)
        return {"view": copy.deepcopy(self.views[view_id])}
