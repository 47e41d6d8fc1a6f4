"""`chatops-bot console`: the real bot and a pretend Slack workspace, in one terminal.

Nothing is faked on the bot's side: the same `create_bot` as production serves HTTP on a free
loopback port, on the embedded store (SQLite; DATABASE_URL when set) with the policy from
CHATOPS_POLICY (built-in otherwise) and its outbox dispatcher running. Slack is the
`SlackDouble`, started in process; the bot's SLACK_API_URL points at it. What a person types
becomes what Slack would send: signed slash commands, block_actions for button presses,
view_submission for modals, reaction_added and message events. Whatever the bot does in the
workspace (messages, edits, ephemeral answers, channels, topics, invites, pins, modals) is
printed as it happens, rendered by `bot.console_render`.

Terminal I/O is the standard library only: lines are read from stdin by a thread (os.read,
so a pipe, a file or a TTY all work) and handed to asyncio; colours only on a TTY without
NO_COLOR. REDIS_URL is ignored: the console is one process, the in-process coordinator fits.
"""

from __future__ import annotations

import asyncio
import codecs
import collections
import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

from bot.console_render import (
    InputField,
    Names,
    Numbering,
    Option,
    Style,
    changed_lines,
    clean_mrkdwn,
    confirm_question,
    field_prompt,
    find_element,
    headline,
    indent,
    input_fields,
    options_of,
    render_blocks,
    render_message,
    render_notice,
    render_view,
    state_value,
    view_errors,
    wrap,
)
from bot.errors import ConfigError
from bot.policy import Policy, load_policy
from bot.runtime import Bot, create_bot
from bot.settings import Settings, StoreSettings, load_settings
from bot.slack.requests import (
    AppResponse,
    SlackRequestSender,
    block_actions_body,
    event_callback_body,
    slash_command_body,
    view_submission_body,
)
from bot.slack.sandbox import RecordedCall, RecordedResponse, SlackDouble
from bot.slack.sandbox_state import Channel

log = logging.getLogger(__name__)

DEFAULT_USER = "U0YOU"
DEFAULT_CHANNEL_ID = "C0GENERAL"
DEFAULT_CHANNEL_NAME = "general"
ANNOUNCE_CHANNEL_NAME = "incidents"
BOT_NAME = "chatops-bot"

_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
# Failures the bot expects and handles itself ("already_in_channel" and friends).
_QUIET_FAILURES = {"conversations.join"}
_SELECTS = {"static_select", "overflow", "radio_buttons"}


# ----- input -------------------------------------------------------------------------------


class LineSource(Protocol):
    """Where typed lines come from: None means end of input (Ctrl-D, a closed pipe)."""

    async def readline(self) -> str | None: ...


class StdinLines:
    """Lines from a file descriptor, read by a daemon thread and queued for asyncio.

    os.read (not sys.stdin) so that a thread still blocked in it at exit holds no lock the
    interpreter needs while shutting down; works the same on a TTY, a pipe and a file.
    """

    def __init__(self, fd: int = 0) -> None:
        self._fd = fd
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._pump, name="console-stdin", daemon=True)
        self._thread.start()

    def _put(self, line: str | None) -> bool:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, line)
        except RuntimeError:  # the loop is closed: the console has finished
            return False
        return True

    def _pump(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        pending = ""
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                pending += decoder.decode(b"", final=True)
                if pending and not self._put(pending):
                    return
                self._put(None)
                return
            pending += decoder.decode(chunk)
            while "\n" in pending:
                line, pending = pending.split("\n", 1)
                if not self._put(line.rstrip("\r")):
                    return

    async def readline(self) -> str | None:
        return await self._queue.get()

    def close(self) -> None:
        """End the input now (the console was asked to leave)."""
        self._queue.put_nowait(None)


class QueueLines:
    """Lines handed over by a program (tests, scripted demos)."""

    def __init__(self, lines: Iterable[str] = ()) -> None:
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.feed(*lines)

    def feed(self, *lines: str) -> None:
        for line in lines:
            self._queue.put_nowait(line)

    def close(self) -> None:
        self._queue.put_nowait(None)

    async def readline(self) -> str | None:
        return await self._queue.get()


# ----- configuration -----------------------------------------------------------------------


def data_dir() -> Path:
    """Per-user data directory (XDG), or the working directory when that is not writable."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    path = Path(base) / "chatops-bot"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return Path.cwd()
    return path if os.access(path, os.W_OK) else Path.cwd()


@dataclass(frozen=True)
class ConsoleConfig:
    database_url: str
    policy_path: Path | None
    log_file: Path | None


def console_config(*, fresh: bool = False) -> ConsoleConfig:
    """DATABASE_URL and CHATOPS_POLICY from the environment, else the console's own file."""
    env = load_settings(StoreSettings)  # a malformed variable stops here, named
    directory = data_dir()
    if os.environ.get("DATABASE_URL"):
        if fresh:
            raise ConfigError("--fresh only resets the console's own database; unset DATABASE_URL")
        url = env.DATABASE_URL
    else:
        database = directory / "console.db"
        if fresh:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{database}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{database}"
    return ConsoleConfig(url, env.CHATOPS_POLICY, directory / "console.log")


# ----- the workspace as the renderer sees it -----------------------------------------------


class WorkspaceNames:
    """Display names from the double's state (seeded users and known channels)."""

    def __init__(self, double: SlackDouble) -> None:
        self.state = double.state

    def user(self, user_id: str) -> str | None:
        if user_id == self.state.bot_user_id:
            return BOT_NAME
        seed = self.state.users.get(user_id)
        return str(seed.get("name") or seed.get("real_name") or "") or None if seed else None

    def channel(self, channel_id: str) -> str | None:
        channel = self.state.channels.get(channel_id)
        return channel.name if channel is not None and not channel.is_im else None

    def usergroup(self, group_id: str) -> str | None:
        return None


@dataclass(frozen=True)
class ControlRef:
    """Where a numbered control lives, so a press can find the message as it is now."""

    channel_id: str | None
    ts: str
    ephemeral: bool
    block_id: str | None
    action_id: str


def _fingerprint(message: Mapping[str, Any]) -> str:
    # Reactions, pins and reply counts change a message without editing it.
    visible = [message.get(k) for k in ("text", "blocks", "attachments", "files")]
    return json.dumps(visible, sort_keys=True, default=str)


class _Quit(Exception):
    """The person asked to leave in the middle of a question."""


class _Cancel(Exception):
    """The person cancelled a modal."""


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
  :file                print the last file the bot shared (a report; a chart's size)
  :help                this text
  :quit                leave (Ctrl-D too)
Messages read '#channel · author · msg N'; 'only you' marks answers nobody else sees.
In a modal, answer each field in turn; :cancel closes it without submitting."""


class Console:
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
    ) -> None:
        """`interactive`: a person at a TTY (prompts shown); otherwise input is echoed."""
        self.lines = lines
        self.out = out
        self.database_url = database_url
        self.policy_path = policy_path
        self.policy = policy
        self.style = style or Style(color=False, unicode=True)
        self.interactive = interactive
        self.user_id = user_id
        self.log_file = log_file
        self.quiet = quiet
        self.max_wait = max_wait
        self.signing_secret = secrets.token_hex(16)
        self.double = SlackDouble(
            bot_token=f"xoxb-console-{secrets.token_hex(8)}",
            app_token=f"xapp-console-{secrets.token_hex(8)}",
            on_event=self._on_event,
        )
        self.names: Names = WorkspaceNames(self.double)
        self.bot: Bot | None = None
        self.sender: SlackRequestSender | None = None
        self.channel_id = DEFAULT_CHANNEL_ID
        self.controls: dict[int, ControlRef] = {}
        self._control_numbers: dict[tuple[str, str, str | None, str], int] = {}
        self._message_numbers: dict[tuple[str, str], int] = {}
        self._messages_by_number: dict[int, tuple[str, str]] = {}
        self._seen: dict[tuple[str, str], str] = {}
        self._seen_ephemerals: dict[str, str] = {}
        self._shown: dict[tuple[str, str], list[str]] = {}  # as the reader last saw them
        self._pending_views: collections.deque[str] = collections.deque()
        self._prompt_visible = ""
        self._redraw = interactive and _isatty(out)
        self._last_activity = 0.0
        self._said_hint = False
        self._quit = False
        self.requests_sent = 0
        self.exit_code = 0
        self._last_interrupt = -10.0
        self.last_status: int | None = None  # of the last request sent to the app

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
            while not self._quit:
                await self._open_pending_modals()
                if self._quit:
                    break
                line = await self._ask(self._prompt())
                if line is None:
                    if self._redraw:
                        self._write("\n")
                    break
                await self.handle(line)
                await self.settle()
            await self._wind_down()
            self._print([self.style.dim("Bye.")])
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
        self._print([self.style.dim("(Ctrl-C again to leave; :quit or Ctrl-D also leave)")])

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
        self._last_activity = max(self._last_activity, started)
        while loop.time() - started < self.max_wait:
            await asyncio.sleep(0.05)
            if loop.time() - self._last_activity >= self.quiet:
                return

    # ----- output ---------------------------------------------------------------------------

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def _print(self, lines: Sequence[str]) -> None:
        """Print lines; on a TTY, lift the prompt out of the way and put it back after."""
        if self._prompt_visible and self._redraw:
            self._write("\r\x1b[2K")
        elif self._prompt_visible:
            self._write("\n")
        if self._redraw:
            # Wrapped here, not by the terminal, so continuation lines keep their indent.
            columns = shutil.get_terminal_size().columns - 1
            lines = [part for line in lines for part in wrap(line, columns)]
        self._write("\n".join(lines) + "\n")
        if self._prompt_visible:
            self._write(self._prompt_visible)

    def _notice(self, text: str) -> None:
        mark = "»" if self.style.unicode else ">"
        self._print([self.style.notice(f"{mark} {text}")])

    def _error(self, text: str) -> None:
        self._print([self.style.error(text)])

    def _banner(self) -> None:
        policy = str(self.policy_path) if self.policy_path else "built-in"
        announce = self.policy.announce_channel if self.policy else "?"
        lines = [
            self.style.bold("chatops-bot console") + ": the real bot, and a pretend Slack "
            "workspace in this process.",
            self.style.dim(f"Database {self.database_url}; policy {policy}."),
            f"Announcements go to {self._where_id(announce)}. You are {self.user_id} in "
            f"{self._where_id(self.channel_id)}.",
            "Type a slash command (/incident help), a button's number, or :help.",
        ]
        if self.log_file is not None:
            lines.insert(2, self.style.dim(f"The bot's log: {self.log_file}"))
        self._print(lines)

    def _prompt(self) -> str:
        where = self._where_id(self.channel_id)
        if len(where) > 32:  # war rooms have long names; the prompt must leave room to type
            where = where[:31] + ("…" if self.style.unicode else "~")
        return f"{self.style.bold(self.user_id)} in {self.style.where(where)}> "

    async def _ask(self, prompt: str) -> str | None:
        """Read one line; prompts show on a TTY, and piped input is echoed after them."""
        if self.interactive:
            self._prompt_visible = prompt
            self._write(prompt)
        line = await self.lines.readline()
        self._prompt_visible = ""
        if line is not None and not self.interactive:
            self._print([prompt + line])
        return line

    # ----- what the workspace did -----------------------------------------------------------

    async def _on_event(self, item: RecordedCall | RecordedResponse) -> None:
        self._last_activity = asyncio.get_running_loop().time()
        try:
            self._show_event(item)
            self._show_changes()
        except Exception:  # the bot must not notice a rendering bug
            log.exception("console: could not show %s", item)

    def _show_event(self, item: RecordedCall | RecordedResponse) -> None:
        if isinstance(item, RecordedResponse):
            if item.http_status != 200:
                self._notice(f"the bot's response_url post was refused (HTTP {item.http_status})")
            return
        if not item.ok:
            if item.method not in _QUIET_FAILURES:
                error = item.response.get("error") or f"HTTP {item.http_status}"
                self._print([self.style.error(f"! Slack answered {item.method}: {error}")])
            return
        if item.method in ("views.open", "views.push"):
            view = item.response.get("view") or {}
            if view.get("id"):
                self._pending_views.append(str(view["id"]))
            return
        notice = render_notice(
            item.method,
            item.params,
            item.response,
            names=self.names,
            message_label=self._message_label,
            bot_name=BOT_NAME,
            style=self.style,
        )
        if notice:
            self._notice(notice)

    def _show_changes(self) -> None:
        """Print messages that are new or edited since last time, and note deletions."""
        fresh: list[tuple[float, Channel, dict[str, Any], bool]] = []
        for channel in list(self.double.state.channels.values()):
            present: set[str] = set()
            for message in channel.messages:
                ts = str(message["ts"])
                present.add(ts)
                seen = self._seen.get((channel.id, ts))
                fingerprint = _fingerprint(message)
                if seen != fingerprint:
                    self._seen[(channel.id, ts)] = fingerprint
                    fresh.append((float(ts), channel, message, seen is not None))
            gone = [k for k in self._seen if k[0] == channel.id and k[1] not in present]
            for key in gone:
                del self._seen[key]
                self._notice(f"{self._message_label(*key)} deleted from {self._where(channel)}")
        for _, channel, message, edited in sorted(fresh, key=lambda item: item[0]):
            self._show_message(channel, message, edited=edited)
        for ephemeral in self.double.ephemerals:
            ts = str(ephemeral.get("message_ts"))
            fingerprint = _fingerprint(ephemeral)
            seen = self._seen_ephemerals.get(ts)
            if seen != fingerprint:
                self._seen_ephemerals[ts] = fingerprint
                self._show_ephemeral(ephemeral, edited=seen is not None)

    def _numbering(self, scope: str, ts: str, *, ephemeral: bool) -> Numbering:
        """Stable numbers: an edited message keeps the numbers of the buttons it kept."""

        def number(block_id: str | None, action_id: str) -> int:
            key = (scope, ts, block_id, action_id)
            if key not in self._control_numbers:
                self._control_numbers[key] = len(self._control_numbers) + 1
            found = self._control_numbers[key]
            channel_id = None if scope == "ephemeral" else scope
            if ephemeral:
                channel_id = next(
                    (e.get("channel") for e in self.double.ephemerals if e.get("message_ts") == ts),
                    None,
                )
            self.controls[found] = ControlRef(channel_id, ts, ephemeral, block_id, action_id)
            return found

        return number

    def _message_number(self, channel_id: str, ts: str) -> int:
        key = (channel_id, ts)
        if key not in self._message_numbers:
            number = len(self._message_numbers) + 1
            self._message_numbers[key] = number
            self._messages_by_number[number] = key
        return self._message_numbers[key]

    def _message_label(self, channel_id: str, ts: str) -> str:
        channel = self.double.state.find_channel(channel_id) if channel_id else None
        key = (channel.id if channel else channel_id, ts)
        number = self._message_numbers.get(key)
        return f"msg {number}" if number else "a message"

    def _where(self, channel: Channel | None) -> str:
        if channel is None:
            return "(no channel)"
        if channel.is_im:
            other = channel.user or "?"
            return (
                "DM to you"
                if other == self.user_id
                else f"DM to @{self.names.user(other) or other}"
            )
        if channel.is_mpim:
            return "group DM"
        return f"#{channel.name}"

    def _where_id(self, channel_id: str | None) -> str:
        channel = self.double.state.channels.get(channel_id or "")
        return self._where(channel) if channel else f"#{channel_id}"

    def _author(self, message: Mapping[str, Any]) -> str:
        profile = message.get("bot_profile")
        if isinstance(profile, Mapping) and profile.get("name"):
            return str(profile["name"])
        user_id = str(message.get("user") or "")
        return self.names.user(user_id) or user_id or "someone"

    def _show_message(
        self,
        channel: Channel,
        message: Mapping[str, Any],
        *,
        edited: bool,
        whole: bool = False,
    ) -> None:
        ts = str(message["ts"])
        tags = [f"msg {self._message_number(channel.id, ts)}"]
        parent = message.get("thread_ts")
        if parent and parent != ts:
            tags.append(f"reply to {self._message_label(channel.id, str(parent))}")
            if message.get("subtype") == "thread_broadcast":
                tags.append("also sent to the channel")
        rendered = render_message(
            message,
            names=self.names,
            style=self.style,
            number=self._numbering(channel.id, ts, ephemeral=False),
        )
        where, author = self._where(channel), self._author(message)
        self._show((channel.id, ts), where, author, tags, rendered.lines, edited, whole)

    def _show_ephemeral(self, ephemeral: Mapping[str, Any], *, edited: bool) -> None:
        user = str(ephemeral.get("user") or "")
        tags = ["only you" if user == self.user_id else f"only @{self.names.user(user) or user}"]
        ts = str(ephemeral["message_ts"])
        channel = self.double.state.channels.get(str(ephemeral.get("channel") or ""))
        rendered = render_message(
            ephemeral,
            names=self.names,
            style=self.style,
            number=self._numbering("ephemeral", ts, ephemeral=True),
        )
        key = ("ephemeral", ts)
        self._show(key, self._where(channel), BOT_NAME, tags, rendered.lines, edited, False)

    def _show(
        self,
        key: tuple[str, str],
        where: str,
        author: str,
        tags: list[str],
        lines: list[str],
        edited: bool,
        whole: bool,
    ) -> None:
        """Print a message; an edit shows only what changed since the reader last saw it."""
        before = self._shown.get(key)
        self._shown[key] = lines
        if edited and before is not None and not whole:
            lines = changed_lines(before, lines, style=self.style)
            if not lines:
                return  # an edit nobody could see (the same text again)
            tags = [*tags, "edited (what changed)"]
        elif edited:
            tags = [*tags, "edited"]
        top = headline(where, author, tags, style=self.style)
        self._print(["", top, *indent(lines)])

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
        except _Quit:
            self._quit = True
        except (OSError, TimeoutError) as exc:  # aiohttp errors are OSErrors
            self._error(f"Could not reach the bot: {exc}")

    async def _meta(self, text: str) -> None:
        name, _, rest = text[1:].partition(" ")
        rest = rest.strip()
        if name in ("quit", "q", "exit"):
            self._quit = True
        elif name in ("help", "h", "?"):
            self._print(HELP.split("\n"))
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
            self._error(f"I don't know :{name}. :help lists the console's commands.")

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
            self._error("The bot has not published an App Home for you (yet).")
            return
        # Read-only here: the home's buttons act in Slack (the console numbers messages only).
        rendered = render_blocks(view.get("blocks") or [], names=self.names, style=self.style)
        self._print(
            [self.style.notice("App Home (its buttons work in Slack)"), *indent(rendered.lines)]
        )

    def _last_file(self) -> None:
        shared = [f for f in self.double.files.values() if f.completed and f.content]
        if not shared:
            self._error("No file has been shared yet (try /incident report INC-...).")
            return
        last = shared[-1]
        if last.filename.endswith(".md"):
            self._print(last.content.decode(errors="replace").splitlines())
        else:
            self._notice(f"{last.filename}: {len(last.content)} bytes ({last.title})")

    def _act_as(self, user_id: str) -> None:
        if not _USER_ID.fullmatch(user_id):
            self._error("Give a Slack user ID, for example :as U0BOB")
            return
        self.user_id = user_id
        self._notice(f"you are now {user_id}")

    def _go_to(self, ref: str) -> None:
        if not ref:
            self._error("Give a channel, for example :in #incidents or :in C0123")
            return
        channel = self._channel_named(ref)
        if channel is None:
            return
        self.channel_id = channel.id
        self._notice(f"you are now in {self._where(channel)}")

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
            self._error(f"{ref} could be any of {names}; type more of the name.")
        else:
            self._error(f"There is no channel {ref}. :channels lists them.")
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
            where = self.style.where(self._where(channel))
            lines.append(
                f"{where} ({channel.id}) {self.style.dot} "
                + f" {self.style.dot} ".join(details)
                + here
            )
        self._print(lines or ["No channels yet."])

    def _history(self, ref: str) -> None:
        channel = self._channel_named(ref) if ref else self._current_channel()
        if channel is None:
            return
        if not channel.messages:
            self._print([f"{self._where(channel)} has no messages yet."])
        for message in channel.messages:
            self._show_message(channel, message, edited=False, whole=True)

    def _current_channel(self) -> Channel:
        channel = self.double.state.find_channel(self.channel_id)
        assert channel is not None, "the console's channel vanished"
        return channel

    def _user_name(self) -> str:
        return self.names.user(self.user_id) or self.user_id.lower()

    async def _send(self, body: Any) -> AppResponse:
        assert self.sender is not None, "the console is not started"
        response = await self.sender.send(body)
        self._last_activity = asyncio.get_running_loop().time()
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
            self._error(f"The app has no {command} command.")
        elif response.status != 200:
            self._error(f"The app answered {command} with HTTP {response.status}.")
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
        self._show_changes()

    def _find_message(self, ref: ControlRef) -> dict[str, Any] | None:
        if ref.ephemeral:
            for ephemeral in self.double.ephemerals:
                if ephemeral.get("message_ts") == ref.ts:
                    return {
                        "type": "message",
                        "ts": ref.ts,
                        "text": ephemeral.get("text", ""),
                        "blocks": ephemeral.get("blocks") or [],
                    }
            return None
        channel = self.double.channel(ref.channel_id or "")
        if channel is None:
            return None
        return next((m for m in channel.messages if m.get("ts") == ref.ts), None)

    def control_element(self, number: int) -> Mapping[str, Any] | None:
        """The element behind [number] on its message as it is now (None when gone)."""
        ref = self.controls.get(number)
        message = self._find_message(ref) if ref is not None else None
        if ref is None or message is None:
            return None
        blocks = list(message.get("blocks") or [])
        for attachment in message.get("attachments") or []:
            blocks += attachment.get("blocks") or []
        return find_element(blocks, ref.action_id, ref.block_id)

    async def press(self, number: int) -> None:
        """Press control [number] on its message as the message is now."""
        ref = self.controls.get(number)
        if ref is None:
            self._error(f"There is no button [{number}].")
            return
        message = self._find_message(ref)
        if message is None:
            self._error(f"The message with [{number}] is gone.")
            return
        element = self.control_element(number)
        if element is None:
            self._error(f"[{number}] is no longer on that message.")
            return
        dialog = confirm_question(element, self.names)
        if dialog is not None and not await self._yes(*dialog):
            self._notice("cancelled; nothing was sent")
            return
        overrides: dict[str, Any] | None = None
        if element.get("type") in _SELECTS:
            option = await self._choose(options_of(element, self.names))
            if option is None:
                self._notice("cancelled; nothing was sent")
                return
            overrides = {"type": element["type"], "selected_option": dict(option.raw)}
        if element.get("url"):
            self._notice(f"a browser would open {element['url']}")
        channel = self.double.state.channels.get(ref.channel_id or "")
        state = self.double.state
        body = block_actions_body(
            ref.action_id,
            user_id=self.user_id,
            user_name=self._user_name(),
            channel_id=ref.channel_id or self.channel_id,
            channel_name=channel.name if channel else "",
            message_ts=ref.ts,
            response_url=self.double.new_response_url(
                channel=ref.channel_id, message_ts=ref.ts, user_id=self.user_id
            ),
            message=message,
            is_ephemeral=ref.ephemeral,
            team_id=state.team_id,
            api_app_id=state.app_id,
            action_overrides=overrides,
        )
        response = await self._send(body)
        if response.status == 404:
            self._error(f"The app does not handle [{number}] (action {ref.action_id}).")
        elif response.status != 200:
            self._error(f"The app answered [{number}] with HTTP {response.status}.")

    async def _answer(self, prompt: str) -> str:
        line = await self._ask(prompt)
        if line is None or line.strip() in (":quit", ":q", ":exit"):
            raise _Quit
        return line

    async def _yes(self, question: str, choices: str) -> bool:
        # The question goes through _print so it wraps; the prompt stays short.
        self._print([self.style.bold(question)])
        answer = await self._answer(choices)
        return answer.strip().lower() in ("y", "yes")

    async def _choose(self, options: Sequence[Option]) -> Option | None:
        self._print([f"  {n}) {o.label}" for n, o in enumerate(options, 1)])
        while True:
            answer = (await self._answer(f"Choose 1-{len(options)} (empty to cancel)> ")).strip()
            if not answer:
                return None
            if answer.isdigit() and 1 <= int(answer) <= len(options):
                return options[int(answer) - 1]
            self._error(f"Type a number from 1 to {len(options)}.")

    async def _react(self, rest: str) -> None:
        parts = rest.split()
        if len(parts) != 2 or not parts[0].isdigit():
            self._error("Usage: :react <message number> <emoji>, for example :react 3 pushpin")
            return
        found = self._messages_by_number.get(int(parts[0]))
        channel = self.double.channel(found[0]) if found else None
        message = (
            next((m for m in channel.messages if m.get("ts") == found[1]), None)
            if channel and found
            else None
        )
        if found is None or channel is None or message is None:
            self._error(f"There is no message {parts[0]}.")
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
        self._notice(f"you reacted :{name}: to msg {parts[0]} in {self._where(channel)}")
        response = await self._send(
            event_callback_body(
                event, team_id=state.team_id, api_app_id=state.app_id, bot_user_id=state.bot_user_id
            )
        )
        if response.status != 200:
            self._notice("(the bot does not listen to reactions)")

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
        self._seen[(channel.id, ts)] = _fingerprint(message)
        number = self._message_number(channel.id, ts)
        hint = "" if self._said_hint else "; commands start with / and console commands with :"
        self._said_hint = True
        self._notice(f"you said msg {number} in {self._where(channel)}{hint}")
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

    # ----- modals ---------------------------------------------------------------------------

    async def _open_pending_modals(self) -> None:
        while self._pending_views and not self._quit:
            view_id = self._pending_views.popleft()
            try:
                await self.fill_modal(view_id)
            except _Quit:
                self._quit = True
            except _Cancel:
                self._notice("modal closed; nothing was submitted")
            await self.settle()

    async def fill_modal(self, view_id: str) -> None:
        """Ask for each input of the modal, submit it, and handle the app's answer."""
        view: dict[str, Any] = dict(self.double.views.get(view_id) or {})
        if not view:
            return
        fields = input_fields(view, self.names)
        self._print(["", *render_view(view, names=self.names, style=self.style)])
        values: dict[str, dict[str, Any]] = {}
        to_ask = fields
        while True:
            # A refused field is asked afresh (its view default, not the refused answer, so an
            # optional field can still be left empty); accepted answers are kept.
            for field in to_ask:
                values[field.block_id] = {field.action_id: await self._ask_field(field)}
            current = dict(self.double.views.get(view_id) or view)
            current["id"] = view_id
            body = view_submission_body(
                str(current.get("callback_id", "")),
                values,
                user_id=self.user_id,
                user_name=self._user_name(),
                view=current,
                team_id=self.double.state.team_id,
                api_app_id=self.double.state.app_id,
            )
            response = await self._send(body)
            if response.status != 200:
                self._error(f"The app answered the modal with HTTP {response.status}.")
                return
            answer_body = response.body if isinstance(response.body, Mapping) else {}
            action = answer_body.get("response_action")
            if action == "errors":
                errors = dict(answer_body.get("errors") or {})
                self._print(
                    [
                        self.style.error("The modal was not accepted:"),
                        *indent(view_errors(errors, fields)),
                    ]
                )
                to_ask = [f for f in fields if f.block_id in errors] or fields
                continue
            if action in ("update", "push") and isinstance(answer_body.get("view"), Mapping):
                view = {**answer_body["view"], "id": view_id}
                fields = input_fields(view, self.names)
                self._print(["", *render_view(view, names=self.names, style=self.style)])
                values, to_ask = {}, fields
                if not fields:
                    return
                continue
            self._notice("modal submitted")
            return

    async def _ask_field(self, field: InputField) -> dict[str, Any]:
        """Ask until the answer is acceptable; returns its `state.values` leaf."""
        lines = field_prompt(field, self.style)
        self._print(["", *lines[:-1]])
        while True:
            if field.multiline:
                typed = await self._multiline(lines[-1])
            else:
                typed = await self._answer(lines[-1])
            if typed.strip() == ":cancel":
                raise _Cancel
            leaf, error = state_value(field, typed)
            if error is None and leaf is not None:
                return leaf
            self._error(f"  {error}")

    async def _multiline(self, prompt: str) -> str:
        collected: list[str] = []
        while True:
            line = await self._answer(prompt if not collected else "  ...> ")
            if not line.strip():
                return "\n".join(collected)
            if line.strip() == ":cancel":
                return line
            collected.append(line)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _speaks_utf8(stream: TextIO) -> bool:
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
    return encoding in ("utf8", "utf8sig")


def terminal_style(out: TextIO) -> Style:
    """Colours on a TTY unless NO_COLOR is set; emoji and box characters when UTF-8."""
    color = _isatty(out) and not os.environ.get("NO_COLOR")
    return Style(color=color, unicode=_speaks_utf8(out))


class _ConsoleLogHandler(logging.Handler):
    """Errors from the bot shown in the conversation, one line each (details in the file)."""

    def __init__(self, console: Console) -> None:
        super().__init__(level=logging.ERROR)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            where = f" (details in {self.console.log_file})" if self.console.log_file else ""
            message = record.getMessage().split("\n", 1)[0]
            self.console._print([self.console.style.error(f"! bot error: {message}{where}")])
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
    config = console_config(fresh=fresh)
    console = Console(
        lines=StdinLines(sys.stdin.fileno()),
        out=sys.stdout,
        database_url=config.database_url,
        policy_path=config.policy_path,
        style=terminal_style(sys.stdout),
        interactive=_isatty(sys.stdin),
        log_file=config.log_file,
    )
    _configure_logging(console)
    loop = asyncio.get_running_loop()
    handled = False
    if console.interactive:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGINT, console.interrupt)
            handled = True
    try:
        return await console.run()
    finally:
        if handled:
            loop.remove_signal_handler(signal.SIGINT)
