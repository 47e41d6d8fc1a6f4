"""The workspace's people: users (users.info, users.lookupByEmail) and user groups."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bot.console.workspace.api import ApiError, require
from bot.console.workspace.team import Team
from bot.slack_ids import is_user_id


class Directory:
    """Users and user groups; with no seeded users, any well-formed user ID exists."""

    def __init__(
        self,
        team: Team,
        users: Mapping[str, Mapping[str, Any]] | None,
        usergroups: Mapping[str, Iterable[str]] | None,
    ) -> None:
        self.team = team
        # No seeded directory means any well-formed user ID exists (handy for quick tests).
        self._open_directory = users is None
        self.users: dict[str, dict[str, Any]] = {uid: dict(u) for uid, u in (users or {}).items()}
        self.usergroups: dict[str, list[str]] = {
            gid: list(members) for gid, members in (usergroups or {}).items()
        }

    def user_exists(self, user_id: str) -> bool:
        """Whether users.info would find `user_id`."""
        if user_id == self.team.bot_user_id or user_id in self.users:
            return True
        return self._open_directory and is_user_id(user_id)

    def user_object(self, user_id: str) -> dict[str, Any]:
        """users.info's `user` object: seed fields over realistic defaults."""
        if not self.user_exists(user_id):
            raise ApiError("user_not_found")
        seed = self.users.get(user_id, {})
        is_bot = user_id == self.team.bot_user_id
        name = seed.get("name") or ("chatops-bot" if is_bot else user_id.lower())
        real_name = seed.get("real_name") or name
        profile = {
            "real_name": real_name,
            "display_name": name,
            "real_name_normalized": real_name,
            "display_name_normalized": name,
            "team": self.team.team_id,
            **({"email": f"{name}@example.com"} if not is_bot else {"bot_id": self.team.bot_id}),
            **seed.get("profile", {}),
        }
        user = {
            "id": user_id,
            "team_id": self.team.team_id,
            "name": name,
            "deleted": False,
            "real_name": real_name,
            "tz": "Etc/UTC",
            "tz_label": "Coordinated Universal Time",
            "tz_offset": 0,
            "is_admin": False,
            "is_owner": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": self.team.now(),
        }
        user.update({k: v for k, v in seed.items() if k != "profile"})
        user["profile"] = profile
        return user

    def users_info(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {"user": self.user_object(str(require(params, "user")))}

    def users_lookup_by_email(self, params: Mapping[str, Any]) -> dict[str, Any]:
        email = str(require(params, "email"))
        for user_id in [self.team.bot_user_id, *self.users]:
            user = self.user_object(user_id)
            if user["profile"].get("email") == email:
                return {"user": user}
        raise ApiError("users_not_found")

    def usergroups_users_list(self, params: Mapping[str, Any]) -> dict[str, Any]:
        group_id = str(require(params, "usergroup"))
        if group_id not in self.usergroups:
            raise ApiError("no_such_subteam")
        return {"users": list(self.usergroups[group_id])}
