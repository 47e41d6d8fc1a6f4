"""What the Console's parts (interactions, console commands, slash commands and chat) share.

Console (bot.console.app) is made of mixins; this is what each may use of the others: the
workspace, the feed and the screen, and the Console's own ways to ask, send and settle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.console.feed import Feed, Screen
from bot.console.render import Names, Style
from bot.console.workspace import Channel, SlackDouble
from bot.slack.requests import AppResponse


class ConsoleParts:
    """Attributes and methods Console provides to the mixins it is made of."""

    double: SlackDouble
    feed: Feed
    screen: Screen
    style: Style
    names: Names
    channel_id: str
    database_url: str
    files_dir: Path | None
    _quit: bool

    @property
    def user_id(self) -> str:
        raise NotImplementedError

    @user_id.setter
    def user_id(self, user_id: str) -> None:
        raise NotImplementedError

    async def _ask(self, prompt: str, *, command: bool = False) -> str | None:
        raise NotImplementedError

    async def _send(self, body: Any) -> AppResponse:
        raise NotImplementedError

    def _user_name(self) -> str:
        raise NotImplementedError

    def _current_channel(self) -> Channel:
        raise NotImplementedError

    async def settle(self) -> None:
        raise NotImplementedError
