"""What a person types for the bot: slash commands (signed, with their ack shown as Slack
shows it) and chat in the current channel (a message event)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.console.parts import ConsoleParts
from bot.console.workspace import Channel
from bot.slack.requests import event_callback_body, slash_command_body

# A reference already in Slack's markup (`<@U0BOB>`, `<#C0123|name>`, `<!here>`), what the
# pickers send; `@U0BOB`, `@here`, `#incidents` as a person types them; any other & < >.
_TYPED = re.compile(r"<[@#!][^<>\s]+>|(?<![\w@#])([@#])([\w.-]*\w)|[&<>]")
_SPECIAL = {"channel", "here", "everyone"}
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


class SlashAndChat(ConsoleParts):
    """Slash commands and chat; mixed into Console, which provides the rest."""

    _said_hint: bool

    async def _slash(self, text: str) -> None:
        command, _, arguments = text.partition(" ")
        channel = self._current_channel()
        state = self.double.state
        body = slash_command_body(
            command=command,
            text=self._as_slack_sends(arguments.strip()),
            user_id=self.user_id,
            user_name=self._user_name(),
            channel_id=channel.id,
            channel_name=channel.name,
            team_id=state.team_id,
            response_url=self.double.new_response_url(channel=channel.id, user_id=self.user_id),
            api_app_id=state.app_id,
        )
        response = await self._send(body)
        if response.status == 404:
            self.screen.error(f"The app has no {command} command.")
        elif response.status != 200:
            self.screen.error(f"The app answered {command} with HTTP {response.status}.")
        else:
            self._show_ack(channel, response.body)

    def _as_slack_sends(self, text: str) -> str:
        """Typed text as Slack sends it (slash commands with should_escape, as the manifest
        has them, and messages): & < > escaped, and a person, @here or a channel named as
        Slack's suggestions would have turned them into mentions. Without this `@U0BOB` was
        plain text (refused by /incident assign) and `<b>` reached the bot unescaped."""

        def one(match: re.Match[str]) -> str:
            whole, sign, name = match.group(0), match.group(1), match.group(2)
            if sign is None:
                return _ESCAPES.get(whole, whole)
            if sign == "@" and name in _SPECIAL:
                return f"<!{name}>"
            if sign == "@" and self.double.state.directory.user_exists(name):
                return f"<@{name}>"
            channel = self.double.channel_by_name(name) if sign == "#" else None
            if channel is not None:
                return f"<#{channel.id}|{channel.name}>"
            return whole

        return _TYPED.sub(one, text)

    def _show_ack(self, channel: Channel, body: Any) -> None:
        """Slack shows a slash command's ack body: ephemeral, or in the channel if asked."""
        if isinstance(body, str):
            payload: dict[str, Any] = {"text": body} if body.strip() else {}
        else:
            payload = dict(body) if isinstance(body, Mapping) else {}
        if not payload.get("text") and not payload.get("blocks"):
            return
        if payload.get("response_type") == "in_channel":
            self.double.state.post_message(channel, payload)
        else:
            self.double.state.add_ephemeral(channel.id, self.user_id, payload)
        self.feed.show_changes()

    async def _say(self, text: str) -> None:
        channel = self._current_channel()
        state = self.double.state
        ts = state.new_ts()
        text = self._as_slack_sends(text)
        message = {
            "type": "message",
            "user": self.user_id,
            "text": text,
            "ts": ts,
            "team": state.team_id,
        }
        channel.messages.append(message)
        number = self.feed.own_message(channel, message)
        hint = "" if self._said_hint else "; commands start with / and console commands with :"
        self._said_hint = True
        self.screen.notice(f"you said msg {number} in {self.feed.where(channel)}{hint}")
        channel_type = "im" if channel.is_im else "group" if channel.is_private else "channel"
        event = {
            "type": "message",
            "channel": channel.id,
            "user": self.user_id,
            "text": text,
            "ts": ts,
            "event_ts": ts,
            "channel_type": channel_type,
        }
        await self._send(
            event_callback_body(
                event, team_id=state.team_id, api_app_id=state.app_id, bot_user_id=state.bot_user_id
            )
        )
