"""After the incident, through signed requests: `/incident postmortem` opens the form at once,
bad rows come back beside their fields, a good one stores the postmortem and action items;
`/incident actions` lists them with Close; the App Home is published when opened."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import FakeClock
from bot.errors import StoreUnavailable
from bot.models import Actor
from bot.reports.forms import PostmortemInput
from bot.reports.models import NewActionItem
from bot.slack import report_blocks
from bot.slack.home import HOME_ACK_ACTION
from bot.slack.report_publisher import SlackReportPublisher
from bot.slack.requests import new_trigger_id
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import declare, policy_with, reply
from tests.harness import BOT_TOKEN, BotHarness
from tests.servers import PostgresServer
from tests.waiting import until


def _inputs(view: dict[str, Any]) -> set[str]:
    return {b["block_id"] for b in view["blocks"] if b["type"] == "input"}


async def test_postmortem_form_action_items_and_close(harness: BotHarness) -> None:
    incident = await declare(harness, "declare P2 Search is slow")
    await reply(harness, f"resolve {incident.id} Added an index")
    await harness.settle()
    response = await harness.command(
        f"postmortem {incident.id}", user_id="U0ALICE", trigger_id=new_trigger_id()
    )
    assert response.status == 200
    [_opened] = await harness.double.wait_for("views.open")
    [filled] = await harness.double.wait_for("views.update")
    view = filled.response["view"]
    assert view["callback_id"] == report_blocks.POSTMORTEM_VIEW
    assert {"root_cause", "lessons", "item_0_text", "item_0_owner", "item_0_due"} <= _inputs(view)
    resolution = next(b for b in view["blocks"] if b.get("block_id") == "resolution")
    assert resolution["element"]["initial_value"] == "Added an index"  # prefilled

    due = (datetime.now(UTC) + timedelta(days=5)).date().isoformat()
    values: dict[str, Any] = {
        "root_cause": {"value": {"type": "plain_text_input", "value": "Missing index"}},
        "item_0_text": {"value": {"type": "plain_text_input", "value": "Add index check"}},
        "item_0_owner": {"value": {"type": "users_select", "selected_user": None}},
        "item_0_due": {"value": {"type": "datepicker", "selected_date": due}},
    }
    refused = await harness.submit_view(
        report_blocks.POSTMORTEM_VIEW, values, view=view, user_id="U0ALICE"
    )
    assert refused.status == 200 and refused.body["response_action"] == "errors"
    assert set(refused.body["errors"]) == {"item_0_owner"}
    _, stored = await harness.services.postmortems.action_items(incident.id)
    assert stored == []  # bad input changes nothing

    values["item_0_owner"] = {"value": {"type": "users_select", "selected_user": "U0BOB"}}
    saved = await harness.submit_view(
        report_blocks.POSTMORTEM_VIEW, values, view=view, user_id="U0ALICE"
    )
    assert saved.status == 200 and not saved.body
    await harness.double.wait_for("chat.postEphemeral")
    _, (item,) = await harness.services.postmortems.action_items(incident.id)
    assert (item.text, item.owner, item.is_open) == ("Add index check", "U0BOB", True)

    await harness.command(f"actions {incident.id}", user_id="U0BOB")
    [listed] = await harness.replies()
    assert "Add index check" in str(listed["blocks"])
    clicked = await harness.click(
        report_blocks.CLOSE_ITEM_ACTION, value=str(item.id), user_id="U0BOB"
    )
    assert clicked.status == 200
    await harness.double.wait_for("chat.postEphemeral", count=2)
    _, (closed,) = await harness.services.postmortems.action_items(incident.id)
    assert closed.closed_by == "U0BOB"


def _as_submitted(view: dict[str, Any], typed: dict[str, str]) -> dict[str, Any]:
    """The form's state as Slack submits it: every text input with what it showed (its
    initial value) unless the person typed something else there."""
    values: dict[str, Any] = {}
    for block in view["blocks"]:
        element = block.get("element") or {}
        if block["type"] == "input" and element.get("type") == "plain_text_input":
            value = typed.get(block["block_id"], element.get("initial_value"))
            values[block["block_id"]] = {"value": {"type": "plain_text_input", "value": value}}
    return values


async def _open_postmortem(harness: BotHarness, incident_id: str, count: int) -> dict[str, Any]:
    await harness.command(
        f"postmortem {incident_id}", user_id="U0ALICE", trigger_id=new_trigger_id()
    )
    updates = await harness.double.wait_for("views.update", count=count)
    return updates[-1].response["view"]


async def test_two_people_filling_in_one_postmortem_keep_each_others_text(
    harness: BotHarness,
) -> None:
    """Both open the form while it is empty; one writes the root cause and saves, the other
    the lessons and saves. The second save used to write back the empty root cause its form
    showed, erasing the first person's text."""
    incident = await declare(harness, "declare P2 Search is slow")
    await reply(harness, f"resolve {incident.id} Added an index")
    await harness.settle()
    alices = await _open_postmortem(harness, incident.id, 1)
    bobs = await _open_postmortem(harness, incident.id, 2)

    for view, typed, user_id, answers in (
        (alices, {"root_cause": "Missing index on search_terms"}, "U0ALICE", 1),
        (bobs, {"lessons": "Review query plans", "resolution": "Index added"}, "U0BOB", 2),
    ):
        saved = await harness.submit_view(
            report_blocks.POSTMORTEM_VIEW, _as_submitted(view, typed), view=view, user_id=user_id
        )
        assert saved.status == 200 and not saved.body
        await harness.double.wait_for("chat.postEphemeral", count=answers)

    _, postmortem, _ = await harness.services.postmortems.postmortem(incident.id)
    assert postmortem.root_cause == "Missing index on search_terms"
    assert (postmortem.lessons, postmortem.resolution) == ("Review query plans", "Index added")
    assert postmortem.updated_by == "U0BOB"
    # A field the last one cleared on purpose is cleared.
    again = await _open_postmortem(harness, incident.id, 3)
    saved = await harness.submit_view(
        report_blocks.POSTMORTEM_VIEW,
        _as_submitted(again, {"lessons": ""}),
        view=again,
        user_id="U0ALICE",
    )
    await harness.double.wait_for("chat.postEphemeral", count=3)
    _, postmortem, _ = await harness.services.postmortems.postmortem(incident.id)
    assert (postmortem.root_cause, postmortem.lessons) == ("Missing index on search_terms", "")


async def test_control_characters_in_the_postmortem_form_are_refused_beside_their_fields(
    make_harness: HarnessFactory,
) -> None:
    """The form was the one input edge without the check every other text has: a NUL byte
    failed the save on PostgreSQL after the form had closed, and an escape sequence was
    stored and printed raw by `chatops-bot report` to whoever read it in a terminal."""
    harness = await make_harness("postgres")
    incident = await declare(harness, "declare P2 Search is slow")
    view = await _open_postmortem(harness, incident.id, 1)
    due = (datetime.now(UTC) + timedelta(days=5)).date().isoformat()
    values = _as_submitted(
        view,
        {
            "root_cause": "Missing index\x00",
            "lessons": "Look \x1b]52;c;ZWNobyBwd25lZA==\x07 closer",
            "prevention": "Two lines\r\nand a third\rone",
            "item_0_text": "Add \u202eindex check",
        },
    )
    values["item_0_owner"] = {"value": {"type": "users_select", "selected_user": "U0BOB"}}
    values["item_0_due"] = {"value": {"type": "datepicker", "selected_date": due}}
    refused = await harness.submit_view(
        report_blocks.POSTMORTEM_VIEW, values, view=view, user_id="U0ALICE"
    )
    assert refused.status == 200 and refused.body["response_action"] == "errors"
    assert refused.body["errors"] == {
        "root_cause": "The root cause contains a control character (U+0000).",
        "lessons": "The lessons learned contain a control character (U+001B).",
        "item_0_text": "The action item contains a bidirectional override (U+202E).",
    }
    _, postmortem, items = await harness.services.postmortems.postmortem(incident.id)
    assert (postmortem.root_cause, postmortem.lessons, items) == ("", "", [])

    values = _as_submitted(view, {"prevention": "Two lines\r\nand a third\rone"})
    saved = await harness.submit_view(
        report_blocks.POSTMORTEM_VIEW, values, view=view, user_id="U0ALICE"
    )
    assert saved.status == 200 and not saved.body
    await harness.double.wait_for("chat.postEphemeral")
    _, postmortem, _ = await harness.services.postmortems.postmortem(incident.id)
    assert postmortem.prevention == "Two lines\nand a third\none"  # one way to end a line


async def test_a_file_a_channel_will_not_take_goes_to_whoever_asked(harness: BotHarness) -> None:
    """`/incident stats` (and a report of an incident without a war room) typed in a private
    channel the bot is not in: the answer said the chart and the report were on their way,
    then Slack refused the channel and they were dropped without a word."""
    harness.double.add_channel(
        "C0LEADS", "leads", is_private=True, members=["U0ALICE"], bot_is_member=False
    )
    incident = await declare(harness, "declare P2 Search is slow")
    await harness.command("stats 7", channel_id="C0LEADS")
    await harness.command(f"report {incident.id}", channel_id="C0LEADS")
    answers = [str(answer) for answer in await harness.replies(2)]
    assert any("The chart follows as a file" in answer for answer in answers)
    assert any("being shared in <#C0LEADS>" in answer for answer in answers)

    def shared() -> list[dict[str, Any]]:
        return [c.params for c in harness.double.calls_to("files.completeUploadExternal") if c.ok]

    async def delivered() -> bool:
        await harness.settle()
        return len(shared()) == 2

    await until(delivered, "both files, by direct message")
    opened = harness.double.calls_to("conversations.open")
    [dm] = {c.response["channel"]["id"] for c in opened if c.params["users"] == "U0ALICE"}
    assert [params["channel_id"] for params in shared()] == [dm, dm]
    names = sorted(harness.double.files[p["files"][0]["id"]].filename for p in shared())
    assert names[0] == f"{incident.id}-report.md" and names[1].endswith("-7d.png")
    for params in shared():
        assert params["initial_comment"].startswith("I could not share this in <#C0LEADS>")


async def test_the_postmortem_form_is_not_opened_for_someone_who_may_not_save_it(
    make_harness: HarnessFactory,
) -> None:
    """A person who is not a responder got the whole form, wrote the root cause and the
    lessons, pressed Save, and only then heard "Only responders may record a postmortem",
    with the form closed and everything typed gone."""
    harness = await make_harness("sqlite", policy=policy_with(roles={"responders": ["U0BOB"]}))
    incident = await declare(harness, "declare P2 Search is slow", user_id="U0BOB")
    await harness.command(f"postmortem {incident.id}", user_id="U0EVE", trigger_id=new_trigger_id())
    [shown] = await harness.double.wait_for("views.update")
    view = shown.response["view"]
    assert {b["type"] for b in view["blocks"]} == {"section"} and not view.get("submit")
    assert "Only responders may record a postmortem" in str(view["blocks"])
    # A responder still gets the form.
    await harness.command(f"postmortem {incident.id}", user_id="U0BOB", trigger_id=new_trigger_id())
    updates = await harness.double.wait_for("views.update", count=2)
    assert updates[-1].response["view"]["callback_id"] == report_blocks.POSTMORTEM_VIEW


def _buttons(blocks: list[dict[str, Any]]) -> list[str]:
    return [
        str(b["accessory"]["action_id"]) for b in blocks if b.get("accessory", {}).get("action_id")
    ]


async def test_closing_an_action_item_shows_it_closed_where_close_was_pressed(
    harness: BotHarness,
) -> None:
    """Close answered "closed" but left the list and the reminder as they were, Close button
    and all: the next morning the owner could not tell whether they had closed it."""
    incident = await declare(harness, "declare P2 Search is slow")
    due = datetime.now(UTC) + timedelta(days=3)
    _, (first, second) = await harness.services.postmortems.save_postmortem(
        incident.id,
        Actor("U0ALICE"),
        PostmortemInput(
            action_items=[
                NewActionItem("Add index check", "U0BOB", due),
                NewActionItem("Alert on slow queries", "U0BOB", due),
            ]
        ),
    )
    # The `/incident actions` list (ephemeral): the whole list, redrawn.
    await harness.command(f"actions {incident.id}", user_id="U0BOB")
    [listed] = await harness.replies()
    assert _buttons(listed["blocks"]) == [report_blocks.CLOSE_ITEM_ACTION] * 2
    url = harness.double.new_response_url(channel="C0GENERAL", user_id="U0BOB")
    await harness.click(
        report_blocks.CLOSE_ITEM_ACTION,
        value=str(first.id),
        user_id="U0BOB",
        is_ephemeral=True,
        response_url=url,
    )
    [redrawn] = await harness.replies()
    assert redrawn["replace_original"] is True
    assert _buttons(redrawn["blocks"]) == [report_blocks.CLOSE_ITEM_ACTION]  # the other one
    assert "closed by <@U0BOB>" in str(redrawn["blocks"])

    # A reminder by direct message: that message, without its button.
    client = AsyncWebClient(token=BOT_TOKEN, base_url=harness.double.api_url)
    await SlackReportPublisher(client).remind_action_item(second, incident, overdue=False)
    [posted] = [c for c in harness.double.calls_to("chat.postMessage") if "is due" in str(c.params)]
    message, dm = posted.response["message"], posted.response["channel"]
    await harness.click(
        report_blocks.CLOSE_ITEM_ACTION, message=message, channel_id=dm, user_id="U0BOB"
    )
    [updated] = await harness.double.wait_for("chat.update")
    assert updated.ok and updated.params["ts"] == message["ts"]
    assert _buttons(updated.params["blocks"]) == []
    assert "closed by <@U0BOB>" in str(updated.params["blocks"])


async def test_app_home_is_published_when_opened_and_acknowledges(harness: BotHarness) -> None:
    harness.services.home.home_debounce = 0.2  # not 2 s: the debounce is not what is proven
    incident = await declare(harness, "declare P2 Queue backlog")
    event = {"type": "app_home_opened", "user": "U0BOB", "tab": "home", "channel": "D0BOB"}
    assert (await harness.event(event)).status == 200
    [published] = await harness.double.wait_for("views.publish")
    assert published.ok and incident.id in str(published.params["view"])
    ack = await harness.click(
        HOME_ACK_ACTION, value=incident.id, user_id="U0BOB", response_url=None
    )
    assert ack.status == 200
    await harness.settle()
    assert (await harness.services.incidents.get(incident.id)).acknowledged_by == "U0BOB"
    # The change refreshes the viewer's home (debounced), showing it acknowledged.
    await harness.double.wait_for("views.publish", count=2, timeout=10)


@pytest.mark.parametrize("metadata", ["{not json", "[]", "null", '{"incident_id": 7}'])
async def test_a_postmortem_form_whose_notes_name_no_incident_gets_an_answer(
    harness: BotHarness, caplog: pytest.LogCaptureFixture, metadata: str
) -> None:
    """The form's private_metadata is the bot's own, but a signed body may carry anything:
    the person who pressed Save hears that nothing was saved, and nothing is logged as a
    crash."""
    incident = await declare(harness, "declare P2 Search is slow")
    caplog.set_level(logging.WARNING)
    values = {"root_cause": {"value": {"type": "plain_text_input", "value": "Missing index"}}}
    saved = await harness.submit_view(
        report_blocks.POSTMORTEM_VIEW, values, private_metadata=metadata, user_id="U0ALICE"
    )
    assert saved.status == 200

    def answered() -> bool:  # by direct message: the notes name no channel either
        texts = [str(c.params.get("text")) for c in harness.double.calls_to("chat.postMessage")]
        return any("This form names no incident, so nothing was saved" in t for t in texts)

    await until(answered, "the answer to the person who pressed Save")
    _, postmortem, _ = await harness.services.postmortems.postmortem(incident.id)
    assert postmortem.root_cause == ""
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []


async def test_a_report_that_cannot_be_shared_where_it_was_asked_is_said_to_the_asker(
    harness: BotHarness,
) -> None:
    # Slack refused the upload for good there (not a channel the bot could be invited to:
    # the workspace restricts it): the answer said "being shared in #general", and nobody
    # was ever told. (A channel the bot is not in gets the file by direct message instead.)
    harness.double.fail("files.completeUploadExternal", "restricted_action", times=2)
    incident = await declare(harness, "declare P3 Typo on the status page")
    await harness.command(f"report {incident.id}", channel_id="C0GENERAL", user_id="U0BOB")
    [answer] = await harness.replies()
    assert "being shared in <#C0GENERAL>" in answer["text"], answer

    def told() -> list[str]:
        dm = harness.double.state.open_im("U0BOB")[0].id
        return [
            str(c.params["text"])
            for c in harness.double.calls_to("chat.postMessage")
            if c.ok and c.response.get("channel") == dm
        ]

    await until(told, "the asker told by direct message")
    [said] = told()
    assert f"report of *{incident.id}* could not be shared in <#C0GENERAL>" in said
    assert "restricted_action" in said and "/invite" in said
    # The statistics' chart, the same.
    await harness.command("stats 7", channel_id="C0GENERAL", user_id="U0BOB")
    await harness.replies()
    await until(lambda: len(told()) == 2, "the asker told of the chart too")
    assert told()[1].startswith(":warning: The statistics could not be shared in <#C0GENERAL>")


async def test_one_statistics_chart_per_person_at_a_time(harness: BotHarness) -> None:
    """Each `/incident stats` draws a chart and uploads it: typed in a loop, it kept a thread
    drawing and Slack uploading. Within the pause the chart is refused, saying when to come
    back, and nothing is drawn or queued; someone else may still ask. The figures are always
    answered: the whole answer was refused, though only the chart is paced."""
    await declare(harness, "declare P2 Search is slow")
    await harness.command("stats 7", user_id="U0BOB")
    [first] = await harness.replies()
    assert "The chart follows as a file" in str(first)
    await harness.command("stats 400", user_id="U0BOB")  # a typo is told as such
    [typo] = await harness.replies()
    assert "Give a number of days from 1 to 366." in str(typo["text"]), typo
    for _ in range(3):
        await harness.command("stats 7", user_id="U0BOB")
    for answer in await harness.replies(3):
        assert str(answer["text"]).startswith("Incident statistics, last 7 days: 1 incident(s)")
        [note] = [
            element["text"]
            for block in answer["blocks"]
            if block["type"] == "context"
            for element in block["elements"]
        ]
        said = re.search(
            r"No chart this time: One statistics chart per person every 30 s: try again in"
            r" (\d+) s \(after \d\d:\d\d:\d\d UTC\)\.$",
            note,
        )
        assert said and 1 <= int(said[1]) <= 30, note
    await harness.command("stats 30", user_id="U0ALICE")
    [theirs] = await harness.replies()
    assert "The chart follows as a file" in str(theirs)
    outcomes = [
        e.outcome async for e in harness.services.audit.entries() if e.action == "reports.stats"
    ]
    assert outcomes.count("ok") == 2  # two charts queued, each with its audit entry
    assert sum(o.startswith("refused: One statistics chart") for o in outcomes) == 3
    await harness.settle()
    uploads = [c for c in harness.double.calls_to("files.completeUploadExternal") if c.ok]
    assert len(uploads) == 2  # nothing drawn for the paced three


async def test_one_report_per_person_at_a_time(harness: BotHarness) -> None:
    """`/incident report` typed in a loop rendered and uploaded a file each time. The second
    within the pause is refused, saying when to come back, nothing is queued or put on the
    timeline; a chart, and someone else's report, are not held back by it."""
    incident = await declare(harness, "declare P2 Search is slow")
    await harness.command(f"report {incident.id}", user_id="U0BOB")
    [first] = await harness.replies()
    assert "being shared in" in str(first), first
    for _ in range(3):
        await harness.command(f"report {incident.id}", user_id="U0BOB")
    for answer in await harness.replies(3):
        said = re.fullmatch(
            r"One report per person every 30 s: try again in (\d+) s"
            r" \(after \d\d:\d\d:\d\d UTC\)\.",
            str(answer["text"]),
        )
        assert said and 1 <= int(said[1]) <= 30, answer
    await harness.command("stats 7", user_id="U0BOB")
    await harness.command(f"report {incident.id}", user_id="U0ALICE")
    answers = [str(answer) for answer in await harness.replies(2)]
    assert any("The chart follows as a file" in answer for answer in answers), answers
    assert any("being shared in" in answer for answer in answers), answers
    await harness.settle()
    uploads = [c for c in harness.double.calls_to("files.completeUploadExternal") if c.ok]
    assert len(uploads) == 3  # two reports and the chart
    timeline = await harness.services.incidents.timeline(incident.id)
    assert [e.kind for e in timeline].count("report_shared") == 2


async def test_a_number_of_days_is_read_as_people_type_it(harness: BotHarness) -> None:
    """`/incident stats 30 d` was refused as "not a number of days" while `30`, `30d` and
    `30 days` were read; so was `30 day`. Each person draws one chart: the pace is theirs."""
    for user, typed, days in (
        ("U0ALICE", "30 d", 30),
        ("U0BOB", "14 day", 14),
        ("U0CAROL", "7Days", 7),
        ("U0DAVE", "45 days", 45),
    ):
        await harness.command(f"stats {typed}", user_id=user)
        [answer] = await harness.replies()
        assert str(answer["text"]).startswith(f"Incident statistics, last {days} days:"), answer
    await harness.command("stats 30 weeks", user_id="U0ERIN")
    [refused] = await harness.replies()
    assert "'30 weeks' is not a number of days." in str(refused["text"]), refused


async def test_a_postmortem_the_database_cannot_take_comes_back_to_its_author(
    own_postgres: PostgresServer, make_harness: HarnessFactory
) -> None:
    """The form was accepted (it closed), then the save failed: the author was told to try
    again and everything typed was gone with the form. It comes back by direct message,
    with what went wrong, and nothing is half-saved."""
    harness = await make_harness(database_url=own_postgres.create_database("postmortem"))
    incident = await declare(harness, "declare P2 Search is slow")
    await harness.command(f"postmortem {incident.id}", trigger_id=new_trigger_id())
    [filled] = await harness.double.wait_for("views.update")
    due = (datetime.now(UTC) + timedelta(days=5)).date().isoformat()
    values: dict[str, Any] = {
        "root_cause": {"value": {"type": "plain_text_input", "value": "Pool size <halved>\nby me"}},
        "lessons": {"value": {"type": "plain_text_input", "value": "Canary the config too"}},
        "item_0_text": {"value": {"type": "plain_text_input", "value": "Alert on pool size"}},
        "item_0_owner": {"value": {"type": "users_select", "selected_user": "U0BOB"}},
        "item_0_due": {"value": {"type": "datepicker", "selected_date": due}},
    }
    own_postgres.pause()
    try:
        accepted = await harness.submit_view(
            report_blocks.POSTMORTEM_VIEW,
            values,
            view=filled.response["view"],
            user_id="U0ALICE",
        )
        assert accepted.status == 200 and not accepted.body  # the form closed

        def given_back() -> list[str]:
            dm = harness.double.state.open_im("U0ALICE")[0].id
            return [
                str(c.params["text"])
                for c in harness.double.calls_to("chat.postMessage")
                if c.ok and c.response.get("channel") == dm
            ]

        await until(given_back, "the text given back by direct message", timeout=30)
    finally:
        own_postgres.resume()
    [said] = given_back()
    assert said.startswith(f"Your postmortem of {incident.id}: :warning: I can't reach my database")
    assert "*Root cause*\nPool size &lt;halved&gt;\nby me" in said
    assert "*Lessons learned*\nCanary the config too" in said
    assert "*Action item* Alert on pool size, owner <@U0BOB>, due <!date^" in said

    async def nothing_saved() -> bool:  # nothing half-saved, once the database answers
        try:
            _, recorded, items = await harness.services.postmortems.postmortem(incident.id)
        except StoreUnavailable:
            return False  # the pool's connections from before the outage, going
        assert (recorded.root_cause, recorded.lessons, items) == ("", "", [])
        return True

    await until(nothing_saved, "the database back", timeout=30)


async def test_a_postmortem_time_that_is_no_time_is_refused_beside_its_field(
    harness: BotHarness,
) -> None:
    # A "time" that is no number of seconds (the console sent what was typed), or one past
    # the year 9999, answered the form with HTTP 500 and a traceback; the form said nothing.
    incident = await declare(harness, "declare P2 Search is slow")
    await harness.command(f"postmortem {incident.id}", trigger_id=new_trigger_id())
    [filled] = await harness.double.wait_for("views.update")
    for started, detected in (("2026-12-05 14:00", None), (1764950400, 10**13)):
        values: dict[str, Any] = {
            "root_cause": {"value": {"type": "plain_text_input", "value": "Pool size halved"}},
            "started_at": {"value": {"type": "datetimepicker", "selected_date_time": started}},
            "detected_at": {"value": {"type": "datetimepicker", "selected_date_time": detected}},
        }
        refused = await harness.submit_view(
            report_blocks.POSTMORTEM_VIEW, values, view=filled.response["view"], user_id="U0ALICE"
        )
        assert refused.status == 200 and refused.body["response_action"] == "errors"
        wrong = "started_at" if detected is None else "detected_at"
        assert refused.body["errors"] == {wrong: "Choose a date and time."}
    _, recorded, _ = await harness.services.postmortems.postmortem(incident.id)
    assert recorded.root_cause == ""  # bad input changes nothing


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_similar_past_incidents_show_a_reopened_incidents_fix_that_held(
    make_harness: HarnessFactory, store: str
) -> None:
    """The postmortem recorded the first fix; the incident came back, was reopened and
    resolved again with another. Its report showed the last fix, but the similar-incident
    hint of the next declaration still offered the first one, the fix that did not hold."""
    clock = FakeClock(datetime.now(UTC))
    harness = await make_harness(store, clock=clock)
    earlier = await declare(harness, "declare P2 Checkout API returns 502")
    await reply(harness, f"resolve {earlier.id} Restarted the checkout pods")
    await harness.services.postmortems.save_postmortem(
        earlier.id, Actor("U0ALICE"), PostmortemInput(resolution="Restarted the checkout pods")
    )
    clock.advance(hours=1)
    answer = await reply(harness, f"reopen {earlier.id} the 502s are back")
    assert "open again" in answer, answer
    clock.advance(hours=1)
    await reply(harness, f"resolve {earlier.id} Raised the memory limit")
    await harness.settle()
    clock.advance(hours=1)

    response = await harness.command("declare P2 Checkout API returns 502 again")
    assert response.status == 200
    declared, similar = await harness.replies(2)
    assert "Declared" in declared["text"], declared
    shown = json.dumps(similar["blocks"])
    assert earlier.id in shown and "Resolution: Raised the memory limit" in shown, shown
    assert "Restarted" not in shown
