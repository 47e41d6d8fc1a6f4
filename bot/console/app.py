"""`chatops-bot console`: the real bot and a pretend Slack workspace, in one terminal.

Nothing is faked on the bot's side: the same `create_bot` as production serves HTTP on a free
loopback port, on the embedded store (SQLite; DATABASE_URL when set) with the policy from
CHATOPS_POLICY (built-in otherwise) and its outbox dispatcher running. Slack is the
`SlackDouble` (bot.console.workspace), started in process; the bot's SLACK_API_URL points at
it. What a person types becomes what Slack would send: signed slash commands, block_actions
for button presses, view_submission for modals, reaction_added and message events. Whatever
the bot does in the workspace is printed as it happens (bot.console.feed), rendered by
bot.console.render. Terminal input and output: bot.console.terminal. REDIS_URL is ignored:
the console is one process, the in-process coordinator fits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from bot.console.completion import ConsoleCompleter, SlashCommand, Vocabulary, manifest_commands
from bot.console.config import console_config
from bot.console.feed import ControlRef, Feed, Screen
from bot.console.interactions import Cancel, Interactions, Quit
from bot.console.render import (
    Style,
    clean_mrkdwn,
    indent,
    render_blocks,
)
from bot.console.shared_files import save_shared, shared_files_dir
from bot.console.terminal import (
    LineSource,
    PromptLines,
    QueueLines,
    StdinLines,
    isatty,
    terminal_style,
)
from bot.console.workspace import Channel, SlackDouble
from bot.policy import Policy, load_policy
from bot.runtime import Bot, create_bot
from bot.settings import Settings, load_settings
from bot.slack import help_text
from bot.slack.requests import (
    AppResponse,
    SlackRequestSender,
    event_callback_body,
    slash_command_body,
)

__all__ = ["Console", "QueueLines", "console_config", "run_console"]

log = logging.getLogger(__name__)

DEFAULT_USER = "U0YOU"
DEFAULT_CHANNEL_ID = "C0GENERAL"
DEFAULT_CHANNEL_NAME = "general"
ANNOUNCE_CHANNEL_NAME = "incidents"

_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
HELP = """\
Type what you would type in Slack:
  /incident declare P1 API down   a slash command, signed and sent to the bot as Slack would
  /incident help                  the bot's own help (any command the app registers works)
  3                               press button [3]; confirmations are asked as y/N first
  any other text                  say it in the current channel (the bot gets a message event)
Console commands:
  :as U0BOB            act as another user
  :in #inc-...         type the next commands in that channel (or :in C0123)
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


class Console(Interactions):
    """The bot, the pretend workspace, and the conversation between them and a person."""

    def __init__(
        self,
        *,
        lines: LineSource,
        out: TextIO,
        database_url: str,
        policy_path: Path | None = None,
        policy: Policy | None = None,
        style: Style | None = None,
        interactive: bool = False,
        user_id: str = DEFAULT_USER,
        log_file: Path | None = None,
        quiet: float = 0.3,
        max_wait: float = 3.0,
        files_dir: Path | None = None,
    ) -> None:
        """`interactive`: a person at a TTY (prompts shown); otherwise input is echoed."""
        self.lines = lines
        self.database_url = database_url
        self.policy_path = policy_path
        self.policy = policy
        self.style = style or Style(color=False, unicode=True)
        self.interactive = interactive
        self.log_file = log_file
        self.files_dir = files_dir  # where `:file` saves; beside the database when None
        self.quiet = quiet
        self.max_wait = max_wait
        self.signing_secret = secrets.token_hex(16)
        self.screen = Screen(out, self.style, terminal=interactive and isatty(out))
        self.double = SlackDouble(
            bot_token=f"xoxb-console-{secrets.token_hex(8)}",
            app_token=f"xapp-console-{secrets.token_hex(8)}",
            on_event=self._on_event,
        )
        self.feed = Feed(self.double, self.screen, user_id=user_id)
        self.names = self.feed.names
        self.manifest = manifest_commands()
        self.vocabulary = Vocabulary.of_bot(help_text.HELP_TEXT, self.manifest)
        self.completer = ConsoleCompleter(self.vocabulary)
        self.bot: Bot | None = None
        self.sender: SlackRequestSender | None = None
        self.channel_id = DEFAULT_CHANNEL_ID
        self._said_hint = False
        self._quit = False
        self.requests_sent = 0
        self.exit_code = 0
        self._last_interrupt = -10.0
        self.last_status: int | None = None  # of the last request sent to the app

    @property
    def user_id(self) -> str:
        """Who the person is acting as (`:as`)."""
        return self.feed.user_id

    @user_id.setter
    def user_id(self, user_id: str) -> None:
        self.feed.user_id = user_id

    @property
    def controls(self) -> dict[int, ControlRef]:
        """The numbered buttons and menus on screen."""
        return self.feed.controls

    # ----- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the double and the real bot; seed #general and the announcement channel."""
        policy = self.policy or load_policy(self.policy_path)
        self.policy = policy
        await self.double.start()
        # The file database outlives a session and the double does not: start channel IDs
        # where no earlier session can have been, so old incidents never claim new channels.
        if hasattr(self.double.state, "_id_counter"):
            self.double.state._id_counter = (int(time.time()) - 1_700_000_000) * 10
        self.double.add_channel(DEFAULT_CHANNEL_ID, DEFAULT_CHANNEL_NAME)
        announce = policy.announce_channel
        if announce.startswith("C") and self.double.channel(announce) is None:
            self.double.add_channel(announce, ANNOUNCE_CHANNEL_NAME)
        settings = load_settings(
            Settings,
            SLACK_BOT_TOKEN=self.double.bot_token,
            SLACK_SIGNING_SECRET=self.signing_secret,
            SLACK_APP_TOKEN=None,
            SLACK_API_URL=self.double.api_url,
            DATABASE_URL=self.database_url,
            REDIS_URL=None,
            CHATOPS_POLICY=self.policy_path,
        )
        self.bot = create_bot(settings, policy=policy)
        try:
            await self.bot.start("127.0.0.1", 0)  # starts the outbox dispatcher too
        except BaseException:
            await self.double.stop()
            raise
        self.sender = SlackRequestSender(
            f"http://127.0.0.1:{self.bot.port}/slack/events", self.signing_secret
        )

    async def stop(self) -> None:
        if self.sender is not None:
            await self.sender.close()
        if self.bot is not None:
            await self.bot.stop()
            self.bot = None
        await self.double.stop()

    async def run(self) -> int:
        """Start (unless started), converse until :quit or end of input, deliver, stop."""
        if self.bot is None:
            await self.start()
        try:
            self._banner()
            await self.refresh_vocabulary()
            while not self._quit:
                await self._open_pending_modals()
                if self._quit:
                    break
                line = await self._ask(self._prompt(), command=True)
                if line is None:
                    break
                await self.handle(line)
                await self.settle()
                await self.refresh_vocabulary()
            await self._wind_down()
            self.screen.print([self.style.dim("Bye.")])
        finally:
            await self.stop()
        return self.exit_code

    def interrupt(self) -> None:
        """Ctrl-C at a TTY: drop the line being typed, as a shell does; twice in a row leaves."""
        now = time.monotonic()
        if now - self._last_interrupt < 2.0:
            self._quit = True
            self.exit_code = 130
            close = getattr(self.lines, "close", None)
            if close is not None:
                close()
            return
        self._last_interrupt = now
        self.screen.print([self.style.dim("(Ctrl-C again to leave; :quit or Ctrl-D also leave)")])

    async def _wind_down(self) -> None:
        """Deliver announcements still in the outbox so a piped session shows them."""
        await self.settle()
        if self.bot is not None:
            with contextlib.suppress(Exception):
                await self.bot.services.dispatcher.drain(timeout=5.0)
        await self.settle()

    async def settle(self) -> None:
        """Wait until the bot has been quiet for a moment (its work continues after the ack)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        self.feed.last_activity = max(self.feed.last_activity, started)
        while loop.time() - started < self.max_wait:
            await asyncio.sleep(0.05)
            if loop.time() - self.feed.last_activity >= self.quiet:
                return

    async def refresh_vocabulary(self) -> None:
        """What Tab completes: the incidents in the store, the workspace's channels and people."""
        vocabulary = self.vocabulary
        state = self.double.state
        vocabulary.channels = [c.name for c in state.channels.values() if not c.is_im]
        users = [self.user_id, *state.users]
        vocabulary.users = list(dict.fromkeys(u for u in users if u != state.bot_user_id))
        if self.bot is not None:
            with contextlib.suppress(Exception):  # a store outage costs completion, no more
                incidents = await self.bot.services.incidents.list(open_only=False)
                vocabulary.incident_ids = sorted((i.id for i in incidents), reverse=True)

    # ----- input and output -----------------------------------------------------------------

    async def _on_event(self, item: Any) -> None:
        await self.feed.on_event(item)

    def _banner(self) -> None:
        policy = str(self.policy_path) if self.policy_path else "built-in"
        announce = self.policy.announce_channel if self.policy else "?"
        lines = [
            self.style.bold("chatops-bot console") + ": the real bot, and a pretend Slack "
            "workspace in this process.",
            self.style.dim(f"Database {self.database_url}; policy {policy}."),
            f"Announcements go to {self.feed.where_id(announce)}. You are {self.user_id} in "
            f"{self.feed.where_id(self.channel_id)}.",
            "Type a slash command (/incident help), a button's number, or :help.",
        ]
        if self.log_file is not None:
            lines.insert(2, self.style.dim(f"The bot's log: {self.log_file}"))
        self.screen.print(lines)

    def _prompt(self) -> str:
        where = self.feed.where_id(self.channel_id)
        if len(where) > 32:  # war rooms have long names; the prompt must leave room to type
            where = where[:31] + ("…" if self.style.unicode else "~")
        return f"{self.style.bold(self.user_id)} in {self.style.where(where)}> "

    async def _ask(self, prompt: str, *, command: bool = False) -> str | None:
        """Read one line; prompts show on a TTY, and piped input is echoed after them.

        Ctrl-C at prompt_toolkit's prompt drops the line (a command) or cancels the question.
        """
        shown = self.interactive and not self.lines.draws_prompt
        if shown:
            self.screen.prompt = prompt
            self.screen.out.write(prompt)
            self.screen.out.flush()
        try:
            line = await self.lines.readline(prompt, history=command)
        except KeyboardInterrupt:
            self.interrupt()
            if self._quit:
                return None
            if command:
                return ""
            raise Cancel from None
        finally:
            self.screen.prompt = ""
        if line is None and shown:
            self.screen.out.write("\n")
        if line is not None and not self.interactive:
            self.screen.print([prompt + line])
        return line

    # ----- what the person does -------------------------------------------------------------

    async def handle(self, line: str) -> None:
        """One line of input: a slash command, a button number, a console command or chat."""
        text = line.strip()
        if not text:
            return
        try:
            if text.startswith(":"):
                await self._meta(text)
            elif text.startswith("/"):
                await self._slash(text)
            elif text.isdigit():
                await self.press(int(text))
            else:
                await self._say(text)
        except Quit:
            self._quit = True
        except Cancel:
            self.screen.notice("cancelled; nothing was sent")
        except (OSError, TimeoutError) as exc:  # aiohttp errors are OSErrors
            self.screen.error(f"Could not reach the bot: {exc}")

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
            self._go_to(rest)
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
        rendered = render_blocks(view.get("blocks") or [], names=self.names, style=self.style)
        self.screen.print(
            [self.style.notice("App Home (its buttons work in Slack)"), *indent(rendered.lines)]
        )

    def _last_file(self) -> None:
        shared = [f for f in self.double.files.values() if f.completed and f.content]
        if not shared:
            self.screen.error("No file has been shared yet (try /incident report INC-...).")
            return
        last = shared[-1]
        if last.filename.endswith(".md"):
            self.screen.print(last.content.decode(errors="replace").splitlines())
        try:
            path = save_shared(last, self.files_dir or shared_files_dir(self.database_url))
        except OSError as exc:
            self.screen.error(f"{last.filename} could not be saved: {exc}")
            return
        self.screen.notice(
            f"{last.filename} ({last.title}, {len(last.content)} bytes) saved to {path}"
        )

    def _act_as(self, user_id: str) -> None:
        if not _USER_ID.fullmatch(user_id):
            self.screen.error("Give a Slack user ID, for example :as U0BOB")
            return
        self.user_id = user_id
        self.screen.notice(f"you are now {user_id}")

    def _go_to(self, ref: str) -> None:
        if not ref:
            self.screen.error("Give a channel, for example :in #incidents or :in C0123")
            return
        channel = self._channel_named(ref)
        if channel is None:
            return
        self.channel_id = channel.id
        self.screen.notice(f"you are now in {self.feed.where(channel)}")

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

    def _current_channel(self) -> Channel:
        channel = self.double.state.find_channel(self.channel_id)
        assert channel is not None, "the console's channel vanished"
        return channel

    def _user_name(self) -> str:
        return self.names.user(self.user_id) or self.user_id.lower()

    async def _send(self, body: Any) -> AppResponse:
        assert self.sender is not None, "the console is not started"
        response = await self.sender.send(body)
        self.feed.last_activity = asyncio.get_running_loop().time()
        self.requests_sent += 1
        self.last_status = response.status
        return response

    async def _slash(self, text: str) -> None:
        command, _, arguments = text.partition(" ")
        channel = self._current_channel()
        state = self.double.state
        body = slash_command_body(
            command=command,
            text=arguments.strip(),
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

    async def _react(self, rest: str) -> None:
        parts = rest.split()
        if len(parts) != 2 or not parts[0].isdigit():
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
        name = parts[1].strip(":")
        reactions: list[dict[str, Any]] = message.setdefault("reactions", [])
        reaction = next((r for r in reactions if r["name"] == name), None)
        if reaction is None:
            reaction = {"name": name, "users": [], "count": 0}
            reactions.append(reaction)
        if self.user_id not in reaction["users"]:
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
        self.screen.notice(f"you reacted :{name}: to msg {parts[0]} in {self.feed.where(channel)}")
        response = await self._send(
            event_callback_body(
                event, team_id=state.team_id, api_app_id=state.app_id, bot_user_id=state.bot_user_id
            )
        )
        if response.status != 200:
            self.screen.notice("(the bot does not listen to reactions)")

    async def _say(self, text: str) -> None:
        channel = self._current_channel()
        state = self.double.state
        ts = state.new_ts()
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


class _ConsoleLogHandler(logging.Handler):
    """Errors from the bot shown in the conversation, one line each (details in the file)."""

    def __init__(self, console: Console) -> None:
        super().__init__(level=logging.ERROR)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            where = f" (details in {self.console.log_file})" if self.console.log_file else ""
            message = record.getMessage().split("\n", 1)[0]
            self.console.screen.error(f"! bot error: {message}{where}")
        except Exception:
            self.handleError(record)


def _configure_logging(console: Console) -> None:
    """The bot logs to the console's file; only errors reach the terminal."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.INFO)
    if console.log_file is not None:
        try:
            handler = logging.FileHandler(console.log_file, encoding="utf-8")
        except OSError:
            console.log_file = None
        else:
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
            )
            root.addHandler(handler)
    root.addHandler(_ConsoleLogHandler(console))


async def run_console(*, fresh: bool = False) -> int:
    """`chatops-bot console`: converse on stdin/stdout until :quit or end of input."""
    from prompt_toolkit.patch_stdout import patch_stdout

    config = console_config(fresh=fresh)
    # prompt_toolkit when a person sits at a terminal (both ends); plain lines otherwise.
    at_terminal = isatty(sys.stdin) and isatty(sys.stdout)
    console = Console(
        lines=QueueLines(),  # replaced below, once the completer exists
        out=sys.stdout,
        database_url=config.database_url,
        policy_path=config.policy_path,
        style=terminal_style(sys.stdout),
        interactive=isatty(sys.stdin),
        log_file=config.log_file,
    )
    if at_terminal:
        console.lines = PromptLines(history_file=config.history_file, completer=console.completer)
    else:
        console.lines = StdinLines(sys.stdin.fileno())
    _configure_logging(console)
    loop = asyncio.get_running_loop()
    handled = False
    if console.interactive:
        # Outside prompt_toolkit's prompt (while the bot works) Ctrl-C is a signal.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGINT, console.interrupt)
            handled = True
    try:
        if not at_terminal:
            return await console.run()
        # Whatever the bot prints while a person types appears above their prompt.
        with patch_stdout(raw=True):
            console.screen.out = sys.stdout
            return await console.run()
    finally:
        if handled:
            loop.remove_signal_handler(signal.SIGINT)
