"""`chatops-bot console`: the real bot and a pretend Slack workspace, in one terminal.

Nothing is faked on the bot's side: the same `create_bot` as production serves HTTP on a free
loopback port, on the embedded store (SQLite; DATABASE_URL when set) with the policy from
CHATOPS_POLICY (built-in otherwise) and its outbox dispatcher running. Slack is the
`SlackDouble` (bot.console.workspace), started in process; the bot's SLACK_API_URL points at
it. What a person types becomes what Slack would send: signed slash commands, block_actions
for button presses, view_submission for modals, reaction_added and message events. Whatever
the bot does in the workspace is printed as it happens (bot.console.feed), rendered by
bot.console.render. Terminal input and output: bot.console.terminal; run at a terminal by
bot.console.running. REDIS_URL is ignored: the console is one process, the in-process
coordinator fits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from pathlib import Path
from typing import Any, TextIO

from bot.clock import Clock
from bot.console.banner import banner_lines
from bot.console.commands import ConsoleCommands
from bot.console.completion import ConsoleCompleter, Vocabulary, manifest_commands
from bot.console.config import console_config
from bot.console.earlier import Posted, restore
from bot.console.feed import ControlRef, Feed, Screen
from bot.console.interactions import Cancel, Interactions, Quit
from bot.console.render import Style
from bot.console.slash_and_chat import SlashAndChat
from bot.console.terminal import (
    LineSource,
    QueueLines,
    isatty,
)
from bot.console.workspace import Channel, SlackDouble
from bot.policy import Policy, load_policy
from bot.runtime import Bot, create_bot
from bot.settings import Settings, load_settings
from bot.slack import help_text
from bot.slack.requests import (
    AppResponse,
    SlackRequestSender,
)
from bot.store import migrate

__all__ = ["Console", "QueueLines", "console_config"]

log = logging.getLogger(__name__)

DEFAULT_USER = "U0YOU"
DEFAULT_CHANNEL_ID = "C0GENERAL"
DEFAULT_CHANNEL_NAME = "general"
ANNOUNCE_CHANNEL_NAME = "incidents"


class Console(ConsoleCommands, SlashAndChat, Interactions):
    """The bot, the pretend workspace, and the conversation between them and a person.

    Here: start and stop, the loop that reads lines and what it dispatches to. The rest is
    in its parts: `commands` (":" lines), `slash_and_chat` (slash commands, chat) and
    `interactions` (buttons, modals).
    """

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
        clock: Clock | None = None,
    ) -> None:
        """`interactive`: a person at a TTY (prompts shown); otherwise input is echoed.
        `clock`: the bot's (the wall clock unless given: tests move it between sessions)."""
        self.clock = clock
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
        self.deliver_wait = 30.0  # a piped line's messages, at Slack's pace
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
        self.earlier: list[str] = []  # war rooms of an earlier session, put back at start
        self.earlier_notes: list[str] = []  # what else the banner says of earlier sessions
        self.waiting: list[Posted] = []  # their requests waiting for approval, shown at start

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
        self.double.state.team.start_ids_at((int(time.time()) - 1_700_000_000) * 10)
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
        self.bot = create_bot(settings, policy=policy, clock=self.clock)
        try:
            # Before the bot's outbox and reminders start: what they do at once (edit a card,
            # expire a request whose time ran out meanwhile) must find its message back.
            await self._restore_earlier_sessions(policy.announce_channel)
            await self.bot.start("127.0.0.1", 0)  # starts the outbox dispatcher too
        except BaseException:
            await self.double.stop()
            raise
        self.sender = SlackRequestSender(
            f"http://127.0.0.1:{self.bot.port}/slack/events", self.signing_secret
        )

    async def _restore_earlier_sessions(self, announce_channel: str) -> None:
        """Put back the war rooms, cards and waiting requests of the database's incidents
        (bot.console.earlier), from the store opened (and migrated) ahead of the bot."""
        assert self.bot is not None
        services = self.bot.services
        try:
            await services.store.open()  # the bot's start opens it again: a no-op
            await migrate(services.store)  # a new database has no tables to read yet
            standing = await services.standing.read()
            requests = await services.remediation_records.requests_to_show()
        except Exception:  # the store is out of reach: the bot's start says so
            log.exception("could not read the incidents of earlier sessions")
            return
        restored = restore(self.double, standing, requests, announce_channel)
        for channel, card in restored.cards:
            self.feed.own_message(channel, card)  # already there, not news: `:history` shows it
        self.waiting = restored.waiting
        self.earlier_notes = restored.notes
        rooms = {s.incident.channel_id for s in standing.incidents}
        self.earlier = [
            f"#{channel.name}"
            for channel in self.double.state.channels.values()
            if channel.id in rooms and channel.id != announce_channel
        ]

    def quitting(self) -> bool:
        return self._quit

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
            for channel, message in self.waiting:  # their Approve and Deny, numbered
                self.feed.show_message(channel, message, edited=False, whole=True)
            await self.refresh_vocabulary()
            while not self._quit:
                await self._open_pending_modals()
                if self.quitting():  # a modal's answer may have been :quit
                    break
                line = await self._ask(self._prompt(), command=True)
                if line is None:
                    break
                await self.handle(line)
                await self.settle()
                if not self.interactive:
                    # A pipe reads its next line at once: show what this one caused first
                    # (a `:file` after `/incident report` found the report still queued).
                    await self._deliver()
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
        await self._deliver(self.deliver_wait if not self.interactive else 5.0)

    async def _deliver(self, timeout: float | None = None) -> None:
        """Deliver what the outbox holds now (at Slack's pace), then wait for quiet."""
        if self.bot is not None:
            with contextlib.suppress(Exception):
                await self.bot.services.dispatcher.drain(timeout=timeout or self.deliver_wait)
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
                incidents = await self.bot.services.incidents.open_and_newest()
                vocabulary.incident_ids = sorted((i.id for i in incidents), reverse=True)

    # ----- input and output -----------------------------------------------------------------

    async def _on_event(self, item: Any) -> None:
        await self.feed.on_event(item)

    def _banner(self) -> None:
        self.screen.print(banner_lines(self))

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
            elif text.isascii() and text.isdigit():  # '²' passes isdigit, int() refuses it
                await self.press(int(text))
            else:
                await self._say(text)
        except Quit:
            self._quit = True
        except Cancel:
            self.screen.notice("cancelled; nothing was sent")
        except (OSError, TimeoutError) as exc:  # aiohttp errors are OSErrors
            self.screen.error(f"Could not reach the bot: {exc}")

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
