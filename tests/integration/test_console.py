"""`chatops-bot console` driven like a person would: lines in, rendered Slack out.

The console runs the real bot (create_bot, HTTP, outbox) against the in-process Slack double;
these tests feed it lines and read what it prints.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.console.app import console_config
from bot.console.shared_files import SHARED_DIR
from bot.models import Actor
from bot.reports.forms import PostmortemInput
from bot.reports.models import NewActionItem
from bot.slack import blocks
from tests.console_driver import Driver
from tests.waiting import until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def driver(tmp_path: Path) -> AsyncIterator[Driver]:
    driver = Driver(tmp_path)
    await driver.start()
    yield driver
    if driver.task is None:
        await driver.console.stop()
    elif not driver.task.done():
        driver.lines.close()
        await asyncio.wait_for(driver.task, timeout=20)


async def test_declare_shows_the_announcement_and_a_button_press_reaches_the_app(
    driver: Driver,
) -> None:
    driver.run()
    await driver.wait_for("Type a slash command")
    mark = driver.type("/incident declare P1 API down")

    out = await driver.wait_for("API DOWN", since=mark)
    assert re.search(r"\n#incidents · chatops-bot · msg \d+\n", out), out
    assert "U0YOU in #general> /incident declare P1 API down" in out  # piped input is echoed
    assert "#general · chatops-bot · only you" in out and "Declared INC-" in out
    assert "Severity: 🟠 P1 High" in out and "Status: INVESTIGATING" in out
    assert "<@" not in out and "*" not in out  # mrkdwn cleaned up
    bot = driver.console.bot
    assert bot is not None
    [incident] = await bot.services.incidents.list()
    assert incident.title == "API down" and incident.declared_by == "U0YOU"
    assert incident.id in out

    # Press the announcement's Acknowledge button by its number, as a person would.
    [number] = [
        n for n, ref in driver.console.controls.items() if ref.action_id == blocks.ACK_ACTION
    ][:1]
    sent = driver.console.requests_sent
    driver.type(str(number))
    await driver.wait_requests(sent + 1)
    assert driver.console.last_status == 200  # signed right and handled
    # The notice, posted once the acknowledgement is committed ("Acknowledged: Not yet" on
    # the card matched at once, so the store was read before the click's work was done).
    await driver.wait_for("Acknowledged by", since=mark)
    [incident] = await bot.services.incidents.list()
    assert incident.acknowledged_by == "U0YOU"

    # Tab at the prompt offers the incident the store now holds.
    await until(
        lambda: incident.id in driver.console.completer.candidates("/incident show "),
        "the ID to be offered",
    )
    assert "#incidents" in driver.console.completer.candidates(":in #")

    assert await driver.quit() == 0
    assert "Bye." in driver.out.getvalue()


# ----- the console's mechanics, against listeners added to the real app for this test ------

TEST_BLOCKS: list[dict[str, Any]] = [
    {
        "type": "section",
        "block_id": "intro",
        "text": {"type": "mrkdwn", "text": "Test for <@U0YOU> in <#C0GENERAL>"},
    },
    {
        "type": "actions",
        "block_id": "acts",
        "elements": [
            {
                "type": "button",
                "action_id": "t_go",
                "text": {"type": "plain_text", "text": "Go"},
                "value": "v1",
                "style": "danger",
                "confirm": {
                    "title": {"type": "plain_text", "text": "Really go?"},
                    "text": {"type": "mrkdwn", "text": "It cannot be undone."},
                    "confirm": {"type": "plain_text", "text": "Go"},
                    "deny": {"type": "plain_text", "text": "Stay"},
                },
            },
            {
                "type": "static_select",
                "action_id": "t_pick",
                "placeholder": {"type": "plain_text", "text": "Pick one"},
                "options": [
                    {"text": {"type": "plain_text", "text": "Alpha"}, "value": "a"},
                    {"text": {"type": "plain_text", "text": "Beta"}, "value": "b"},
                ],
            },
            {
                "type": "button",
                "action_id": "t_form",
                "text": {"type": "plain_text", "text": "Form"},
                "value": "f",
            },
        ],
    },
]

TEST_MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "t_modal",
    "title": {"type": "plain_text", "text": "Test form"},
    "submit": {"type": "plain_text", "text": "Save"},
    "blocks": [
        {
            "type": "input",
            "block_id": "title",
            "label": {"type": "plain_text", "text": "Title"},
            "element": {"type": "plain_text_input", "action_id": "text"},
        },
        {
            "type": "input",
            "block_id": "severity",
            "label": {"type": "plain_text", "text": "Severity"},
            "element": {
                "type": "static_select",
                "action_id": "pick",
                "options": [
                    {"text": {"type": "plain_text", "text": "P1 High"}, "value": "P1"},
                    {"text": {"type": "plain_text", "text": "P2 Medium"}, "value": "P2"},
                ],
            },
        },
        {
            "type": "input",
            "block_id": "notes",
            "optional": True,
            "label": {"type": "plain_text", "text": "Notes"},
            "element": {"type": "plain_text_input", "action_id": "text", "multiline": True},
        },
    ],
}

Seen = dict[str, list[Any]]


def install_test_listeners(app: AsyncApp) -> Seen:
    """Listeners that exercise every console mechanism, plus a spy on verified requests."""
    seen: Seen = defaultdict(list)

    @app.middleware
    async def spy(
        req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        # Runs after Bolt's signature check: only correctly signed requests get here.
        seen["requests"].append(req.body)
        return await next()

    @app.command("/consoletest")
    async def command(ack: Any, command: dict[str, Any], client: Any) -> None:
        await ack("Posting a test message")
        await client.chat_postMessage(
            channel=command["channel_id"], text="Test message", blocks=TEST_BLOCKS
        )

    @app.action("t_go")
    async def go(ack: Any, body: dict[str, Any], client: Any) -> None:
        await ack()
        seen["go"].append(body)
        pressed = [
            {
                "type": "section",
                "block_id": "intro",
                "text": {"type": "mrkdwn", "text": f"Pressed by <@{body['user']['id']}>"},
            },
            {**TEST_BLOCKS[1], "elements": TEST_BLOCKS[1]["elements"][1:]},
        ]
        await client.chat_update(
            channel=body["channel"]["id"], ts=body["message"]["ts"], text="Pressed", blocks=pressed
        )

    @app.action("t_pick")
    async def pick(ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack()
        value = body["actions"][0]["selected_option"]["value"]
        seen["pick"].append(value)
        await respond(text=f"You picked *{value}*", response_type="ephemeral")

    @app.action("t_form")
    async def form(ack: Any, body: dict[str, Any], client: Any) -> None:
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=TEST_MODAL)

    @app.view("t_modal")
    async def submitted(ack: Any, view: dict[str, Any], client: Any) -> None:
        values = view["state"]["values"]
        title = values["title"]["text"]["value"]
        if title == "bad":
            await ack(response_action="errors", errors={"title": "Give a real title"})
            return
        await ack()
        seen["modal"].append(values)
        await client.chat_postMessage(channel="C0GENERAL", text=f"Saved _{title}_")

    return seen


async def test_buttons_confirm_selects_modals_reactions_users_and_channels(
    driver: Driver,
) -> None:
    seen = install_test_listeners(driver.app)
    driver.run()
    await driver.wait_for("Type a slash command")

    mark = driver.type("/consoletest")
    # The ack's body and the posted message race (the listener posts right after acking).
    await driver.wait_for("[3] Form", since=mark)
    out = await driver.wait_for("Posting a test message", since=mark)
    assert "#general · chatops-bot · only you\n  Posting a test message" in out  # the ack body
    assert "#general · chatops-bot · msg 1\n  Test for @U0YOU in #general\n" in out
    assert "[1] Go  [2] Pick one ▾  [3] Form" in out

    # A confirm dialog answered "no" sends nothing.
    mark = driver.type("1", "n")
    out = await driver.wait_for("cancelled; nothing was sent", since=mark)
    assert "Really go? It cannot be undone.\n[y = Go / N = Stay] n\n" in out
    assert seen["go"] == []

    mark = driver.type("1", "y")
    out = await driver.wait_for("edited (what changed)", since=mark)
    await driver.wait_for("[3] Form", since=mark)
    [click] = seen["go"]
    assert click["actions"][0]["value"] == "v1" and click["user"]["id"] == "U0YOU"
    assert click["container"]["message_ts"] == click["message"]["ts"]
    out = await driver.wait_for("Pressed by @U0YOU", since=mark)
    assert "[2] Pick one ▾  [3] Form" in out  # the buttons it kept keep their numbers
    assert "[1]" not in out

    mark = driver.type("2", "2")
    out = await driver.wait_for("You picked b", since=mark)
    assert "1) Alpha" in out and "2) Beta" in out
    assert "#general · chatops-bot · only you\n  You picked b" in out
    assert seen["pick"] == ["b"]

    mark = driver.type("3")
    out = await driver.wait_for("Title (required)", since=mark)
    assert "┌ Test form" in out
    mark = driver.type("bad", "1", "line one", "line two", "", "API down")
    out = await driver.wait_for("modal submitted", since=mark)
    assert "The modal was not accepted:\n  Title: Give a real title" in out
    assert out.count("Title (required)") == 1  # only the refused field is asked again
    [values] = seen["modal"]
    assert values["title"]["text"] == {"type": "plain_text_input", "value": "API down"}
    assert values["severity"]["pick"]["selected_option"]["value"] == "P1"
    assert values["notes"]["text"]["value"] == "line one\nline two"
    await driver.wait_for("Saved API down", since=mark)

    sent = driver.console.requests_sent
    mark = driver.type(":react 1 pushpin")
    await driver.wait_for("you reacted :pushpin: to msg 1", since=mark)
    await driver.wait_requests(sent + 1)
    reaction = next(
        r["event"] for r in seen["requests"] if r.get("event", {}).get("type") == "reaction_added"
    )
    general = driver.console.double.messages("C0GENERAL")
    assert reaction["item"] == {"type": "message", "channel": "C0GENERAL", "ts": general[0]["ts"]}
    assert reaction["user"] == "U0YOU" and reaction["reaction"] == "pushpin"

    mark = driver.type(":in #nope", ":in #inc")
    out = await driver.wait_for("you are now in #incidents", since=mark)  # a unique prefix
    assert "There is no channel #nope" in out

    sent = driver.console.requests_sent
    mark = driver.type(":as U0BOB", ":in #general", ":in #incidents", "/consoletest", "hello team")
    out = await driver.wait_for("you said msg", since=mark)
    await driver.wait_requests(sent + 2)
    assert "U0BOB in #incidents> /consoletest" in out
    last_command = [r for r in seen["requests"] if r.get("command") == "/consoletest"][-1]
    assert last_command["user_id"] == "U0BOB" and last_command["channel_id"] == "C0INCIDENTS"
    said = [r["event"] for r in seen["requests"] if r.get("event", {}).get("type") == "message"]
    assert said[-1]["text"] == "hello team" and said[-1]["user"] == "U0BOB"

    mark = driver.type(":channels", ":bogus", ":help", "99")
    out = await driver.wait_for("There is no button [99].", since=mark)
    assert "Slash commands in the app's manifest:" in out
    assert re.search(r"\n  /oncall \[P0\|P1\|P2\|P3\] +Who is on call", out), out
    assert "#incidents (C0INCIDENTS)" in out and "<- you are here" in out
    assert "I don't know :bogus" in out
    assert await driver.quit() == 0


# ----- configuration and the real command ------------------------------------------------


def test_console_database_defaults_to_the_per_user_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("CHATOPS_POLICY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    config = console_config()
    assert config.database_url == f"sqlite:///{tmp_path}/data/chatops-bot/console.db"
    assert config.policy_path is None
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/mine.db")
    monkeypatch.setenv("CHATOPS_POLICY", str(ROOT / "chatops.example.yml"))
    config = console_config()
    assert config.database_url == f"sqlite:///{tmp_path}/mine.db"
    assert config.policy_path == ROOT / "chatops.example.yml"


def _entry_point() -> str:
    beside_python = Path(sys.executable).parent / "chatops-bot"
    found = str(beside_python) if beside_python.exists() else shutil.which("chatops-bot")
    assert found, "the chatops-bot entry point is not installed (pip install -e .)"
    return found


def test_chatops_bot_console_in_a_pipe_shows_the_announcement(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "LANG": "C.UTF-8",
    }
    result = subprocess.run(
        [_entry_point(), "console"],
        input="/incident declare P1 API down\n:quit\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "\x1b[" not in out  # not a terminal: no colour codes
    assert "> /incident declare P1 API down" in out
    assert "#general · chatops-bot · only you" in out and "Declared INC-" in out
    assert re.search(r"\n#incidents · chatops-bot · msg \d+\n", out), out
    assert "API DOWN" in out and "P1 High" in out
    assert out.rstrip().endswith("Bye.")
    assert (tmp_path / "data" / "chatops-bot" / "console.db").exists()
    assert "Traceback" not in result.stderr


def test_a_piped_session_shows_each_lines_effects_before_reading_the_next(
    tmp_path: Path,
) -> None:
    """A pipe reads its next line at once: `:file` right after `/incident report` once found
    no file yet ("No file has been shared yet"), the report still queued behind the war
    room's messages at Slack's pace."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "LANG": "C.UTF-8",
    }
    lines = [
        "/incident declare P1 Checkout API returns 502",
        "/incident resolve INC-{today}-001 Rolled back",
        "/incident report INC-{today}-001",
        ":file",
    ]
    today = datetime.now(UTC).strftime("%Y%m%d")
    result = subprocess.run(
        [_entry_point(), "console"],
        input="".join(line.format(today=today) + "\n" for line in lines),
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "No file has been shared yet" not in out
    typed_file = out.index("> :file")
    assert out.index("Post-incident report for") < typed_file
    assert "saved to " in out[typed_file:] and "# Post-incident report" in out[typed_file:]


async def test_home_report_and_stats_in_the_console(driver: Driver, tmp_path: Path) -> None:
    driver.run()
    await driver.wait_for("Type a slash command")
    mark = driver.type("/incident declare P2 Search is slow")
    await driver.wait_for("Declared INC-", since=mark)
    bot = driver.console.bot
    assert bot is not None
    [incident] = await bot.services.incidents.list()

    mark = driver.type(":home")
    out = await driver.wait_for("Your action items", since=mark)
    assert "App Home" in out and "Open incidents: 1" in out and incident.id in out
    # Its buttons act in Slack only: no number a message's button has (typing 1 pressed
    # the announcement's Acknowledge, thought to be the Home's).
    # (Only the Home's lines: an edit of the announcement may print its own buttons here.)
    home = out.split("App Home (its buttons work in Slack)", 1)[1].split("Updated ", 1)[0]
    assert "[0] Acknowledge" in home and "[1]" not in home

    mark = driver.type(f"/incident report {incident.id}")
    out = await driver.wait_for("Post-incident report for", since=mark)
    mark = driver.type(":file")
    out = await driver.wait_for("saved to ", since=mark)
    assert "## Lessons learned" in out
    assert f"# Post-incident report: {incident.id}" in out and "still open" in out
    report = _saved(out, tmp_path)
    assert report.suffix == ".md" and f"# Post-incident report: {incident.id}" in (
        report.read_text()
    )

    mark = driver.type("/incident stats 7")
    out = await driver.wait_for("P2: 1 incident(s)", since=mark)
    assert "MTTA —" in out  # nobody acknowledged it yet
    # The chart cannot show in a terminal: `:file` saves it beside the database, says where.
    await until(
        lambda: any(
            f.filename.endswith(".png") and f.completed
            for f in driver.console.double.files.values()
        ),
        "the chart shared",
    )
    mark = driver.type(":file")
    out = await driver.wait_for("saved to ", since=mark)
    chart = _saved(out, tmp_path)
    assert chart.suffix == ".png" and chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert chart != report  # a second file beside the first


async def test_typed_text_reaches_the_bot_as_slack_sends_it(driver: Driver) -> None:
    # `@U0BOB` was sent as plain text (refused: "pick the person from Slack's @
    # suggestions"), and `<b>` unescaped, which the bot read as Slack markup: "b".
    driver.run()
    await driver.wait_for("Type a slash command")
    mark = driver.type("/incident declare P2 Search is slow")
    await driver.wait_for("Declared INC-", since=mark)
    bot = driver.console.bot
    assert bot is not None
    [incident] = await bot.services.incidents.list()
    mark = driver.type(f"/incident assign tech-lead @U0BOB {incident.id}")
    out = await driver.wait_for("is now Tech lead", since=mark)
    assert "@U0BOB is now Tech lead" in out
    mark = driver.type(f"/incident note {incident.id} pool <b> & <@U0CAROL> @here #incidents")
    out = await driver.wait_for("Note from", since=mark)
    assert "Note from @U0YOU: pool <b> & @U0CAROL @here #incidents\n" in out
    assert await driver.quit() == 0


async def test_going_into_a_war_room_joins_it_and_brings_the_catch_up(driver: Driver) -> None:
    # `:in` let someone type in a war room they were not in; the bot never heard them
    # join, so the catch-up README promises to a joiner could not be seen in the console.
    driver.run()
    await driver.wait_for("Type a slash command")
    mark = driver.type("/incident declare P1 Search is down")
    await driver.wait_for("topic:", since=mark)
    bot = driver.console.bot
    assert bot is not None
    [incident] = await bot.services.incidents.list()
    # After the first update U0NEW comes late (those invited as the room opened get none).
    mark = driver.type(f"/incident update {incident.id} investigating Index nodes unreachable")
    await driver.wait_for("Index nodes unreachable", since=mark)
    mark = driver.type(":as U0NEW", ":in #inc-")
    out = await driver.wait_for("Open action items", since=mark)
    assert "you joined #inc-" in out and "only you\n  Catch-up on INC-" in out
    mark = driver.type(":in #general", ":in #inc-", "/incident catchup")
    out = await driver.wait_for("Open action items", since=mark)
    assert "joined" not in out and out.count("Catch-up on") == 1  # once, as in Slack
    assert await driver.quit() == 0


async def test_each_close_button_of_an_action_list_closes_its_own_item(driver: Driver) -> None:
    # Its Close buttons share an action_id in blocks without a block_id (Slack gives each
    # block one): both read [1], and pressing it closed the first item, never the second.
    driver.run()
    await driver.wait_for("Type a slash command")
    mark = driver.type("/incident declare P2 Search is slow")
    await driver.wait_for("Declared INC-", since=mark)
    bot = driver.console.bot
    assert bot is not None
    [incident] = await bot.services.incidents.list()
    due = datetime.now(UTC) + timedelta(days=3)
    await bot.services.postmortems.save_postmortem(
        incident.id,
        Actor("U0YOU", "you"),
        PostmortemInput(
            action_items=[
                NewActionItem("Add a pool alert", "U0YOU", due),
                NewActionItem("Raise the pool size", "U0YOU", due),
            ]
        ),
    )

    mark = driver.type(f"/incident actions {incident.id}")
    out = await driver.wait_for("Raise the pool size", since=mark)
    numbers = re.findall(r"\[(\d+)\] Close", out)
    assert len(numbers) == 2 and numbers[0] != numbers[1], out
    # The list is U0YOU's alone: someone else cannot press its buttons, as in Slack.
    mark = driver.type(":as U0BOB", numbers[0], ":as U0YOU")
    out = await driver.wait_for("you are now U0YOU", since=mark)
    assert f"[{numbers[0]}] is on a message only @U0YOU sees (:as U0YOU to press it)." in out
    mark = driver.type(numbers[1], "y")
    await driver.wait_for("closed by @U0YOU", since=mark)
    _, items = await bot.services.postmortems.action_items(incident.id)
    assert [(item.text, item.is_open) for item in items] == [
        ("Add a pool alert", True),
        ("Raise the pool size", False),
    ]
    assert await driver.quit() == 0


async def test_a_modal_with_only_close_is_not_submitted(driver: Driver) -> None:
    # Slack shows the postmortem form's "no such incident" modal with Close only; the
    # console sent it as a submission anyway, and the bot answered "form not known".
    driver.run()
    await driver.wait_for("Type a slash command")
    bot = driver.console.bot
    assert bot is not None
    mark = driver.type("/incident postmortem INC-20261205-999")
    out = await driver.wait_for("nothing to submit; the modal is closed", since=mark)
    assert "(nothing to submit: [Close] only)" in out
    await driver.wait_for("INC-20261205-999", since=mark)
    assert "form" not in out.split("nothing to submit; the modal is closed", 1)[1]
    outcomes = [e.outcome async for e in bot.services.audit.entries()]
    assert "refused: unknown form" not in outcomes
    assert await driver.quit() == 0


def _saved(out: str, tmp_path: Path) -> Path:
    """The file `:file` says it saved: in `shared/` beside the console's database."""
    [where] = re.findall(r"saved to (\S+)", out)
    path = Path(where)
    assert path.parent == tmp_path / SHARED_DIR and path.exists(), where
    return path
