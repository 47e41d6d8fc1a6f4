"""The workspace's team and app: who they are, and the IDs and timestamps they hand out."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


class Team:
    """The team, the bot user and the app; IDs, message ts and the time from one clock."""

    def __init__(
        self,
        *,
        team_id: str,
        bot_user_id: str,
        bot_id: str,
        app_id: str,
        clock: Callable[[], float],
    ) -> None:
        self.team_id = team_id
        self.team_domain = team_id.lower()
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self._clock = clock
        self._id_counter = 0
        self._last_ts_us = 0

    def start_ids_at(self, counter: int) -> None:
        """Hand out the next IDs from `counter` on."""
        self._id_counter = counter

    def new_id(self, prefix: str) -> str:
        """A Slack-shaped ID ("C0SBX000001"): prefix, then 10 of [A-Z0-9]."""
        self._id_counter += 1
        return f"{prefix}0SBX{self._id_counter:06d}"

    def new_ts(self) -> str:
        """A message ts: unique and strictly increasing, as Slack's are within a channel."""
        now_us = int(self._clock() * 1_000_000)
        self._last_ts_us = max(now_us, self._last_ts_us + 100)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def now(self) -> int:
        """Current time in whole seconds, from the injected clock."""
        return int(self._clock())

    def auth_test(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": "Sandbox Workspace",
            "user": "chatops-bot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }
