"""The console's own commands (`:as`, `:in`, `:react`, `:channels`, `:history`, `:home`,
`:file`, `:help`, `:quit`) and the help text that lists them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.console.completion import SlashCommand
from bot.console.feed import can_see
from bot.console.parts import ConsoleParts
from bot.console.render import clean_mrkdwn, indent, render_blocks
from bot.console.shared_files import save_shared, shared_files_dir
from bot.console.workspace import Channel
from bot.slack.requests import event_callback_body
from bot.slack_ids import is_user_id

HELP = """\
Type what you would type in Slack:
  /incident declare P1 API down   a slash command, signed and sent to the bot as Slack would
  /incident help                  the bot's own help (any command the app registers works)
  3                               press button [3]; confirmations are asked as y/N first
  any other text                  say it in the current channel (the bot gets a message event)
  @U0BOB, @here, #incidents       mentions, as Slack's suggestions make them
Console commands:
  :as U0BOB            act as another user
  :in #inc-...         type the next commands in that channel (or :in C0123); you join
                       a public channel you are not in, as in Slack
  :react 4 pushpin     react to message 4 (the bot gets reaction_added)
  :channels            channels with their topics, members and pins
  :history [#channel]  show a channel's messages again
  :home                open your App Home (incidents, roles, action items)
  :file                save the last file the bot shared (a report, a chart) and print
                       where; a report is printed too
  :help                this text
  :quit                leave (Ctrl-D too)
At a terminal, Tab completes commands, channels and incident IDs; Up recalls earlier lines.
Messages read '#channel · author · msg N'; 'only you' marks answers nobody else sees.
In a modal, answer each field in turn; :cancel (or Ctrl-C) closes it without submitting."""


def slash_command_help(commands: Sequence[SlashCommand]) -> list[str]:
    """The app's slash commands, as its manifest declares them."""
    if not commands:
        return []
    lines = ["Slash commands in the app's manifest:"]
    for command in commands:
        usage = f"{command.command} {command.usage_hint}".strip()
        lines.append(f"  {usage:<44} {command.description}".rstrip())
    return lines


class ConsoleCommands(ConsoleParts):
    """Lines starting with ":"; mixed into Console, which provides the rest."""

    manifest: list[SlashCommand]

    async def _meta(self, text: str) -> None:
        name, _, rest = text[1:].partition(" ")
        rest = rest.strip()
        if name in ("quit", "q", "exit"):
            self._quit = True
        elif name in ("help", "h", "?"):
            self.screen.print([*HELP.split("\n"), *slash_command_help(self.manifest)])
        elif name == "as":
            self._act_as(rest)
        elif name == "in":
            await self._go_to(rest)
        elif name == "react":
            await self._react(rest)
        elif name == "channels":
            self._list_channels()
        elif name == "history":
            self._history(rest)
        elif name == "home":
            await self._home()
        elif name == "file":
            self._last_file()
        else:
            self.screen.error(f"I don't know :{name}. :help lists the console's commands.")

    async def _home(self) -> None:
        """Open the App Home as Slack does (app_home_opened), then show what the bot published."""
        state = self.double.state
        event = {
            "type": "app_home_opened",
            "user": self.user_id,
            "tab": "home",
            "channel": "D0HOME",
            "event_ts": state.new_ts(),
        }
        await self._send(
            event_callback_body(
                event, team_id=state.team_id, api_app_id=state.app_id, bot_user_id=state.bot_user_id
            )
        )
        await self.settle()
        view = self.double.home_view(self.user_id)
        if view is None:
            self.screen.error("The bot has not published an App Home for you (yet).")
            return
        # Read-only here: the home's buttons act in Slack (the console numbers messages only).
        # Numbered 0, as a modal's: numbered 1, 2... they took the numbers of message buttons,
        # and typing one pressed a message's button (Acknowledge in #incidents, say).
        rendered = render_blocks(
            view.get("blocks") or [], names=self.names, style=self.style, number=lambda _b, _a: 0
        )
        self.screen.print(
            [self.style.notice("App Home (its buttons work in Slack)"), *indent(rendered.lines)]
        )

    def _last_file(self) -> None:
        shared = [f for f in self.double.files.values() if f.completed and f.content]
        if not shared:
            self.screen.error("No file has been shared yet (try /incident report INC-...).")
            return
        last = shared[-1]
        content = last.content or b""
        if last.filename.endswith(".md"):
            self.screen.print(content.decode(errors="replace").splitlines())
        try:
            path = save_shared(last, self.files_dir or shared_files_dir(self.database_url))
        except OSError as exc:
            self.screen.error(f"{last.filename} could not be saved: {exc}")
            return
        self.screen.notice(f"{last.filename} ({last.title}, {len(content)} bytes) saved to {path}")

    def _act_as(self, user_id: str) -> None:
        user_id = user_id.removeprefix("@")  # typed as README shows people: @U0BOB
        if not is_user_id(user_id):
            self.screen.error("Give a Slack user ID, for example :as U0BOB")
            return
        self.user_id = user_id
        self.screen.notice(f"you are now {user_id}")

    async def _go_to(self, ref: str) -> None:
        if not ref:
            self.screen.error("Give a channel, for example :in #incidents or :in C0123")
            return
        channel = self._channel_named(ref)
        if channel is None:
            return
        self.channel_id = channel.id
        self.screen.notice(f"you are now in {self.feed.where(channel)}")
        if self._joinable(channel):
            await self._join(channel)

    def _joinable(self, channel: Channel) -> bool:
        """A public channel whose members the double knows, without this person in it."""
        plain = not (channel.is_private or channel.is_im or channel.is_mpim or channel.is_archived)
        return plain and channel.members_known and self.user_id not in channel.members

    async def _join(self, channel: Channel) -> None:
        """Join it, as Slack's Join button does: the bot hears member_joined_channel (a war
        room's catch-up; without this a newcomer typed there unjoined and never saw one)."""
        channel.members.append(self.user_id)
        state = self.double.state
        self.screen.notice(f"you joined {self.feed.where(channel)}")
        event = {
            "type": "member_joined_channel",
            "user": self.user_id,
            "channel": channel.id,
            "channel_type": "C",
            "team": state.team_id,
            "event_ts": state.new_ts(),
        }
        await self._send(
            event_callback_body(
                event, team_id=state.team_id, api_app_id=state.app_id, bot_user_id=state.bot_user_id
            )
        )

    def _channel_named(self, ref: str) -> Channel | None:
        """A channel by ID, by name, or by the start of a name when only one fits."""
        ref = ref.removeprefix("<").removesuffix(">")
        channel = self.double.state.find_channel(ref)
        if channel is not None:
            return channel
        prefix = ref.removeprefix("#")
        fits = [
            c
            for c in self.double.state.channels.values()
            if not c.is_im and c.name.startswith(prefix)
        ]
        if len(fits) == 1:
            return fits[0]
        if fits:
            names = ", ".join(f"#{c.name}" for c in fits)
            self.screen.error(f"{ref} could be any of {names}; type more of the name.")
        else:
            self.screen.error(f"There is no channel {ref}. :channels lists them.")
        return None

    def _list_channels(self) -> None:
        lines: list[str] = []
        for channel in self.double.state.channels.values():
            details = [
                f"{len(channel.messages)} message" + ("" if len(channel.messages) == 1 else "s")
            ]
            if channel.is_private and not channel.is_im:
                details.append("private")
            if channel.members_known and not channel.is_im:
                people = [self.names.user(m) or m for m in channel.members]
                details.append("members: " + ", ".join("@" + p for p in people))
            if channel.pinned:
                details.append(f"{len(channel.pinned)} pinned")
            if channel.topic.get("value"):
                topic = clean_mrkdwn(str(channel.topic["value"]), self.names, self.style)
                details.append(f"topic: {topic}")
            here = "  <- you are here" if channel.id == self.channel_id else ""
            where = self.style.where(self.feed.where(channel))
            lines.append(
                f"{where} ({channel.id}) {self.style.dot} "
                + f" {self.style.dot} ".join(details)
                + here
            )
        self.screen.print(lines or ["No channels yet."])

    def _history(self, ref: str) -> None:
        channel = self._channel_named(ref) if ref else self._current_channel()
        if channel is None:
            return
        if not channel.messages:
            self.screen.print([f"{self.feed.where(channel)} has no messages yet."])
        for message in channel.messages:
            self.feed.show_message(channel, message, edited=False, whole=True)

    async def _react(self, rest: str) -> None:
        parts = rest.split()
        if len(parts) != 2 or not (parts[0].isascii() and parts[0].isdigit()):
            self.screen.error(
                "Usage: :react <message number> <emoji>, for example :react 3 pushpin"
            )
            return
        found = self.feed.message_at(int(parts[0]))
        channel = self.double.channel(found[0]) if found else None
        message = (
            next((m for m in channel.messages if m.get("ts") == found[1]), None)
            if channel and found
            else None
        )
        if found is None or channel is None or message is None:
            self.screen.error(f"There is no message {parts[0]}.")
            return
        where = self.feed.where(channel)
        if not can_see(channel, self.user_id):
            # Slack shows a DM or a private channel only to those in it.
            self.screen.error(f"msg {parts[0]} is in {where}, which {self.user_id} cannot see.")
            return
        name = parts[1].strip(":")
        reactions: list[dict[str, Any]] = message.setdefault("reactions", [])
        reaction = next((r for r in reactions if r["name"] == name), None)
        if reaction is None:
            reaction = {"name": name, "users": [], "count": 0}
            reactions.append(reaction)
        if self.user_id in reaction["users"]:
            # Slack sends reaction_added once: the same reaction again is one you already have.
            self.screen.notice(f"you already reacted :{name}: to msg {parts[0]}; nothing sent")
            return
        reaction["users"].append(self.user_id)
        reaction["count"] += 1
        state = self.double.state
        event = {
            "type": "reaction_added",
            "user": self.user_id,
            "reaction": name,
            "item": {"type": "message", "channel": channel.id, "ts": found[1]},
            "item_user": message.get("user"),
            "event_ts": state.new_ts(),
        }
        self.screen.notice(f"you reacted :{name}: to msg {parts[0]} in {where}")
        response = await self._send(
            event_callback_body(
                event, team_id=state.team_id, api_app_id=state.app_id, bot_user_id=state.bot_user_id
            )
        )
        if response.status != 200:
            self.screen.notice("(the bot does not listen to reactions)")
