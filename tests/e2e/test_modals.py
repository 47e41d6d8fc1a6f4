"""Modals: `/incident declare` alone opens the declaration form at once; the Post update
button opens a form prefilled from the template. Validation errors go back beside the
fields; a good submission makes one service call and answers the submitter."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from bot.incidents.schemas import DeclareIncident
from bot.models import Actor, Severity, Status
from bot.slack import blocks, modals
from bot.slack.requests import new_trigger_id
from tests.e2e.incident_helpers import (
    ANNOUNCE,
    count,
    current,
    declare,
    pinned_summary,
    policy_with,
    reply,
    stored_state,
    updates,
)
from tests.harness import BotHarness
from tests.waiting import until


def _select(value: str) -> dict[str, Any]:
    return {"type": "static_select", "selected_option": {"value": value}}


def _inputs(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}


async def test_declare_alone_opens_the_form_at_once_and_submitting_declares(
    harness: BotHarness,
) -> None:
    sent = time.time()
    assert (await harness.command("declare", channel_id="C0GENERAL")).status == 200
    [opened] = await harness.double.wait_for("views.open")
    assert opened.ok and opened.time - sent < 1.0  # well inside the trigger_id's 3 s
    view = opened.response["view"]
    assert view["callback_id"] == modals.DECLARE_VIEW
    fields = _inputs(view)
    assert set(fields) == {"title", "severity", "impact", "services"}
    assert [o["value"] for o in fields["severity"]["options"]] == ["P0", "P1", "P2", "P3"]
    assert await count(harness, "incidents") == 0  # nothing until it is submitted

    values = {
        "title": {"value": "Checkout API returns 502"},
        "severity": {"value": _select("P1")},
        "impact": {"value": "EU card payments fail"},
        "services": {"value": "checkout, payments"},
    }
    response = await harness.submit_view(modals.DECLARE_VIEW, values, view=view, user_id="U0BOB")
    assert response.status == 200 and not response.body  # the modal closes
    await harness.double.wait_for("chat.postEphemeral")
    [answer] = harness.double.ephemerals
    assert (answer["channel"], answer["user"]) == ("C0GENERAL", "U0BOB")
    assert "Declared *INC-" in answer["text"]
    await harness.settle()
    [incident] = await harness.services.incidents.list()
    assert (incident.title, incident.severity.value, incident.declared_by) == (
        "Checkout API returns 502",
        "P1",
        "U0BOB",
    )
    assert incident.impact == "EU card payments fail"
    assert incident.services == ("checkout", "payments")
    assert (await current(harness, incident)).channel_id is not None  # a P1: its war room
    [entry] = [e async for e in harness.services.audit.entries() if e.actor == "U0BOB"]
    assert (entry.action, entry.outcome) == ("incident.declare", "ok")


async def test_declare_form_errors_are_shown_beside_the_fields(harness: BotHarness) -> None:
    await harness.command("declare")
    [opened] = await harness.double.wait_for("views.open")
    view = opened.response["view"]
    values = {"title": {"value": "  "}, "severity": {"value": {"type": "static_select"}}}
    response = await harness.submit_view(modals.DECLARE_VIEW, values, view=view)
    assert response.body["response_action"] == "errors"
    assert set(response.body["errors"]) == {"title", "severity"}
    assert await count(harness, "incidents") == 0
    await harness.settle()
    [entry] = [e async for e in harness.services.audit.entries()]
    assert (entry.action, entry.outcome) == ("incident.declare", "rejected: usage")


async def test_an_expired_trigger_gets_a_clear_answer(harness: BotHarness) -> None:
    stale = new_trigger_id(time.time() - 10)
    answer = await reply(harness, "declare", trigger_id=stale)
    # The usage line shows `<P0|...>` literally: escaped, since `<...>` is markup in mrkdwn.
    assert "expired_trigger_id" in answer
    assert "/incident declare &lt;P0|P1|P2|P3&gt; &lt;title&gt;" in answer


async def _open_update_form(harness: BotHarness, room: str, user_id: str) -> dict[str, Any]:
    summary = pinned_summary(harness, room)
    await harness.click(
        blocks.UPDATE_ACTION,
        message=summary,
        channel_id=room,
        user_id=user_id,
        message_ts=summary["ts"],
    )
    [loading] = await harness.double.wait_for("views.open")
    [filled] = await harness.double.wait_for("views.update")
    assert filled.params["view_id"] == loading.response["view"]["id"]
    return dict(filled.response["view"])


async def test_post_update_form_is_prefilled_and_posts_the_update(harness: BotHarness) -> None:
    incident = await declare(harness)
    room = incident.channel_id or ""
    await reply(
        harness, "update identified Bad deploy impact EU card payments fail", channel_id=room
    )
    await harness.settle()

    view = await _open_update_form(harness, room, "U0ONCALL")
    assert view["callback_id"] == modals.UPDATE_VIEW
    fields = _inputs(view)
    # Prefilled from the template; no status before the current one is offered.
    assert fields["status"]["initial_option"]["value"] == "identified"
    assert [o["value"] for o in fields["status"]["options"]] == [
        "identified",
        "monitoring",
        "resolved",
    ]
    assert fields["message"]["initial_value"] == "Bad deploy"
    assert fields["impact"]["initial_value"] == "EU card payments fail"

    values = {
        "status": {"value": _select("monitoring")},
        "message": {"value": "Rolled back; error rate falling"},
        "eta": {"value": "20m"},
        "impact": {"value": "EU card payments fail"},
    }
    response = await harness.submit_view(modals.UPDATE_VIEW, values, view=view, user_id="U0ONCALL")
    assert response.status == 200 and not response.body
    await harness.double.wait_for("chat.postEphemeral")
    [answer] = [e for e in harness.double.ephemerals if e["user"] == "U0ONCALL"]
    assert answer["channel"] == room and "MONITORING" in answer["text"]
    await harness.settle()
    stored = await current(harness, incident)
    assert stored.status is Status.MONITORING and stored.eta == "in 20 min"
    [latest, *_] = reversed(updates(harness, room))
    assert "Rolled back; error rate falling" in str(latest.params["blocks"])
    assert "MONITORING" in str(updates(harness, ANNOUNCE)[-1].params["blocks"])
    [entry] = [e async for e in harness.services.audit.entries() if e.actor == "U0ONCALL"]
    assert (entry.action, entry.outcome, entry.args["status"]) == (
        "incident.update",
        "ok",
        "monitoring",
    )


async def test_update_form_errors_change_nothing(harness: BotHarness) -> None:
    incident = await declare(harness)
    room = incident.channel_id or ""
    view = await _open_update_form(harness, room, "U0ALICE")
    before = await stored_state(harness)
    values = {
        "status": {"value": _select("identified")},
        "message": {"value": " "},
        "eta": {"value": "soon"},
    }
    response = await harness.submit_view(modals.UPDATE_VIEW, values, view=view)
    assert response.body["response_action"] == "errors"
    assert "'soon' is not a duration" in response.body["errors"]["eta"]
    assert "message" in response.body["errors"]
    await harness.settle()
    assert await stored_state(harness) == before


async def test_update_form_for_a_resolved_incident_says_so(harness: BotHarness) -> None:
    incident = await declare(harness)
    room = incident.channel_id or ""
    summary = pinned_summary(harness, room)  # the card as it was, buttons and all
    await reply(harness, f"resolve {incident.id} Fixed")
    await harness.click(
        blocks.UPDATE_ACTION,
        message=summary,
        channel_id=room,
        user_id="U0ALICE",
        message_ts=summary["ts"],
    )
    [filled] = await harness.double.wait_for("views.update")
    assert "is resolved" in str(filled.params["view"]["blocks"])
    assert _inputs(filled.params["view"]) == {}  # nothing to submit


async def test_an_update_form_is_refused_when_it_opens_to_whoever_may_not_post(
    make_harness,
) -> None:
    # The card (in the announcement channel too) offers Post update to everyone: someone who
    # is not a responder typed a whole update into the form, only to be refused on submit.
    harness = await make_harness(policy=policy_with(roles={"responders": ["U0ALICE"]}))
    incident = await declare(harness)
    room = incident.channel_id or ""
    summary = pinned_summary(harness, room)
    await harness.click(
        blocks.UPDATE_ACTION,
        message=summary,
        channel_id=room,
        user_id="U0EVE",
        message_ts=summary["ts"],
    )
    [filled] = await harness.double.wait_for("views.update")
    assert "Only responders may" in str(filled.params["view"]["blocks"])
    assert _inputs(filled.params["view"]) == {}  # nothing to type in
    refusals = [
        (e.actor, e.action, e.outcome)
        async for e in harness.services.audit.entries()
        if e.outcome.startswith("refused")
    ]
    assert refusals == [("U0EVE", "incident.update_form", "refused: not allowed")]
    # A responder still gets the form.
    await harness.click(
        blocks.UPDATE_ACTION,
        message=summary,
        channel_id=room,
        user_id="U0ALICE",
        message_ts=summary["ts"],
    )
    filled = (await harness.double.wait_for("views.update", count=2))[-1]
    assert "message" in _inputs(filled.params["view"])


async def test_the_answer_falls_back_to_a_direct_message(harness: BotHarness) -> None:
    await harness.command("declare", channel_id="C0GENERAL", user_id="U0BOB")
    [opened] = await harness.double.wait_for("views.open")
    harness.double.fail("chat.postEphemeral", error="channel_not_found")
    values = {"title": {"value": "Search is slow"}, "severity": {"value": _select("P3")}}
    await harness.submit_view(
        modals.DECLARE_VIEW, values, view=opened.response["view"], user_id="U0BOB"
    )
    await harness.double.wait_for("chat.postMessage")
    dm_channel = harness.double.state.open_im("U0BOB")[0].id
    await harness.settle()
    [dm] = [
        c
        for c in harness.double.calls_to("chat.postMessage")
        if c.ok and c.response["channel"] == dm_channel
    ]
    assert "Declared *INC-" in dm.params["text"]


async def test_the_form_gives_the_similar_incidents_the_typed_command_gives(
    harness: BotHarness,
) -> None:
    # Issue 15: the form declared through a copy of the command's code that had lost the
    # similar-incident hint.
    earlier = await harness.services.incidents.declare(
        DeclareIncident(severity=Severity.P2, title="Checkout API returns 502"), Actor("U0BOB")
    )
    await harness.services.incidents.resolve(
        earlier.id, Actor("U0BOB"), summary="Rolled back the deploy"
    )
    assert (await harness.command("declare", channel_id="C0GENERAL")).status == 200
    [opened] = await harness.double.wait_for("views.open")
    values = {
        "title": {"value": "Checkout API returns 502 again"},
        "severity": {"value": _select("P2")},
    }
    view = opened.response["view"]
    response = await harness.submit_view(modals.DECLARE_VIEW, values, view=view, user_id="U0BOB")
    assert response.status == 200
    await harness.double.wait_for("chat.postEphemeral", 2)
    declared, similar = (e["text"] for e in harness.double.ephemerals)
    assert "Declared *INC-" in declared
    assert similar == f"Similar past incidents: {earlier.id}"


async def test_a_postmortem_form_that_cannot_open_is_named_as_the_postmortem_form(
    harness: BotHarness,
) -> None:
    # Issue 15: a copied error branch told the user "I could not open the declaration form".
    incident = await harness.services.incidents.declare(
        DeclareIncident(severity=Severity.P2, title="Queue backlog"), Actor("U0BOB")
    )
    harness.double.fail("views.open", "expired_trigger_id")
    await harness.command(f"postmortem {incident.id}", trigger_id=new_trigger_id())
    [answer] = await harness.replies()
    assert answer["text"].startswith("I could not open the postmortem form (`expired_trigger_id`)")
    assert "declaration" not in answer["text"]


async def test_the_form_names_a_service_typed_twice_in_two_cases_once(
    harness: BotHarness,
) -> None:
    # The form kept "Web" and "web" as two services, which /diagnose and the Diagnose button
    # read as one; each is now named once, as the catalog names it (lowercase).
    assert (await harness.command("declare", channel_id="C0GENERAL")).status == 200
    [opened] = await harness.double.wait_for("views.open")
    values = {
        "title": {"value": "Web slow"},
        "severity": {"value": _select("P3")},
        "services": {"value": "Web, web, Checkout,WEB"},
    }
    view = opened.response["view"]
    response = await harness.submit_view(modals.DECLARE_VIEW, values, view=view, user_id="U0BOB")
    assert response.status == 200 and not response.body
    await harness.double.wait_for("chat.postEphemeral")
    await harness.settle()
    [incident] = await harness.services.incidents.list()
    assert incident.services == ("web", "checkout")


async def test_a_declaration_form_whose_opening_slack_never_answers_is_told_not_dropped(
    harness: BotHarness,
) -> None:
    # views.open's answer lost (twice: slack_sdk retries a dropped connection once): the
    # error escaped the listener as a traceback and the person was told nothing at all.
    harness.double.lose_reply("views.open", times=2)
    await harness.command("declare", channel_id="C0GENERAL", trigger_id=new_trigger_id())
    [answer] = await harness.replies()
    assert answer["text"] == (
        "Slack did not answer when I opened the declaration form. If it did not open:"
        " Declare with `/incident declare &lt;P0|P1|P2|P3&gt; &lt;title&gt;` instead."
    )
    assert await harness.services.incidents.list() == []


async def test_a_form_opened_whose_answer_was_lost_is_filled_in_not_said_failed(
    harness: BotHarness,
) -> None:
    # views.open's answer lost once: slack_sdk retried, Slack answered exchanged_trigger_id
    # (the first call had opened the form), and the person was told the form could not
    # open while it sat on their screen, "Loading" for good.
    incident = await declare(harness)
    room = incident.channel_id or ""
    await harness.settle()
    summary = pinned_summary(harness, room)
    harness.double.lose_reply("views.open", times=1)
    await harness.click(
        blocks.UPDATE_ACTION,
        message=summary,
        channel_id=room,
        user_id="U0ONCALL",
        message_ts=summary["ts"],
    )
    [filled] = await harness.double.wait_for("views.update")
    opened = [c for c in harness.double.calls_to("views.open")]
    assert [c.response.get("error") for c in opened[1:]] == ["exchanged_trigger_id"]
    assert filled.ok and filled.response["view"]["callback_id"] == modals.UPDATE_VIEW
    assert filled.params["external_id"] == opened[0].params["view"]["external_id"]
    await harness.settle()
    told = len(harness.double.responses)

    harness.double.lose_reply("views.open", times=1)  # the declaration form: no error said
    await harness.command("declare", channel_id="C0GENERAL", trigger_id=new_trigger_id())
    await until(lambda: len(harness.double.calls_to("views.open")) == 4, "the retried open")
    await harness.settle()
    assert harness.double.responses[told:] == []  # was "I could not open the ... form"
    assert [e for e in harness.double.ephemerals if e["user"] == "U0ONCALL"] == []


async def test_an_update_form_slack_cannot_fill_in_is_said_not_left_loading(
    harness: BotHarness,
) -> None:
    # views.update failed (here its answer lost twice): the form stayed "Loading" for good,
    # the failure went to the log as a traceback, and the person was told nothing.
    incident = await declare(harness)
    room = incident.channel_id or ""
    await harness.settle()
    summary = pinned_summary(harness, room)
    harness.double.lose_reply("views.update", times=2)
    await harness.click(
        blocks.UPDATE_ACTION,
        message=summary,
        channel_id=room,
        user_id="U0ONCALL",
        message_ts=summary["ts"],
    )
    [answer] = await harness.replies()
    assert answer["text"] == (
        "I could not open the update form (`slack_unreachable`). Use `/incident update` instead."
    )


async def test_an_answer_that_gets_no_answer_either_way_is_reported_cleanly(
    harness: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    # The ephemeral and then the direct message both lost (timeouts, slack_sdk trying each
    # twice): the declaration stands, and the lost answer is a warning, not a traceback.
    await harness.command("declare", channel_id="C0GENERAL", user_id="U0BOB")
    [opened] = await harness.double.wait_for("views.open")
    harness.double.lose_reply("chat.postEphemeral", times=2)
    harness.double.lose_reply("chat.postMessage", times=2, channel="U0BOB")
    values = {"title": {"value": "Search is slow"}, "severity": {"value": _select("P3")}}
    with caplog.at_level(logging.WARNING):
        await harness.submit_view(
            modals.DECLARE_VIEW, values, view=opened.response["view"], user_id="U0BOB"
        )
        await until(
            lambda: any("no answer to U0BOB" in r.getMessage() for r in caplog.records),
            "the lost answer reported",
        )
    assert len(await harness.services.incidents.list()) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
