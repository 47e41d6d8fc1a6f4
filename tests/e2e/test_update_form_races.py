"""Two responders open "Post update" at once: the second form was filled in from the
incident as it was. What its author left as it was shown (the status, the impact) must not
undo what the first one posted meanwhile; what they typed is posted."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bot.models import Status
from bot.slack import blocks, modals
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import current, declare, pinned_summary, reply
from tests.harness import BotHarness
from tests.servers import PostgresServer
from tests.waiting import until


def _select(value: str) -> dict[str, Any]:
    return {"type": "static_select", "selected_option": {"value": value}}


async def _open_forms(harness: BotHarness, room: str, users: list[str]) -> list[dict[str, Any]]:
    summary = pinned_summary(harness, room)
    for user_id in users:
        await harness.click(
            blocks.UPDATE_ACTION,
            message=summary,
            channel_id=room,
            user_id=user_id,
            message_ts=summary["ts"],
        )
    await until(lambda: len(harness.double.calls_to("views.update")) >= len(users), "the forms")
    return [dict(call.response["view"]) for call in harness.double.calls_to("views.update")]


async def _submit(
    harness: BotHarness, view: dict[str, Any], values: dict[str, Any], user: str
) -> str:
    """Submit the form as `user`; their private answer."""

    def answers() -> list[dict[str, Any]]:
        return [e for e in harness.double.ephemerals if e["user"] == user]

    before = len(answers())
    response = await harness.submit_view(modals.UPDATE_VIEW, values, view=view, user_id=user)
    assert response.status == 200 and not response.body
    await until(lambda: len(answers()) > before, f"{user}'s answer")
    return str(answers()[-1]["text"])


async def test_a_form_opened_before_another_update_keeps_what_its_author_did_not_touch(
    harness: BotHarness,
) -> None:
    incident = await declare(harness)
    room = incident.channel_id or ""
    await reply(
        harness, "update investigating Looking impact EU card payments fail", channel_id=room
    )
    await harness.settle()
    alice_form, oncall_form = await _open_forms(harness, room, ["U0ALICE", "U0ONCALL"])

    alice = {
        "status": {"value": _select("identified")},
        "message": {"value": "Bad deploy found"},
        "impact": {"value": "All card payments fail"},
    }
    assert "IDENTIFIED" in await _submit(harness, alice_form, alice, "U0ALICE")
    # On-call only wrote his message: the status and the impact are as his form showed them.
    oncall = {
        "status": {"value": _select("investigating")},
        "message": {"value": "Database looks healthy"},
        "impact": {"value": "EU card payments fail"},
    }
    answer = await _submit(harness, oncall_form, oncall, "U0ONCALL")
    assert "Posted your update" in answer and "IDENTIFIED" in answer, answer

    stored = await current(harness, incident)
    assert stored.status is Status.IDENTIFIED
    assert stored.impact == "All card payments fail"  # Alice's, not On-call's stale copy
    assert stored.current_status == "Database looks healthy"


async def test_a_status_or_impact_chosen_in_a_stale_form_still_counts(
    harness: BotHarness,
) -> None:
    incident = await declare(harness)
    room = incident.channel_id or ""
    alice_form, oncall_form = await _open_forms(harness, room, ["U0ALICE", "U0ONCALL"])
    alice = {"status": {"value": _select("monitoring")}, "message": {"value": "Rolled back"}}
    assert "MONITORING" in await _submit(harness, alice_form, alice, "U0ALICE")
    # On-call chose "identified" himself: going back is refused, as for the typed command.
    oncall = {
        "status": {"value": _select("identified")},
        "message": {"value": "Bad deploy found"},
        "impact": {"value": "Checkout slow"},
    }
    assert "cannot go back to identified" in await _submit(harness, oncall_form, oncall, "U0ONCALL")
    stored = await current(harness, incident)
    assert (stored.status, stored.current_status) == (Status.MONITORING, "Rolled back")


async def test_a_form_refused_because_the_incident_was_resolved_gives_the_text_back(
    harness: BotHarness,
) -> None:
    incident = await declare(harness)
    room = incident.channel_id or ""
    [form] = await _open_forms(harness, room, ["U0ONCALL"])
    await reply(harness, f"resolve {incident.id} Rolled back", channel_id=room)
    typed = "DB failover done\nReplica lag <!channel> back to 0"
    mine = {"status": {"value": _select("identified")}, "message": {"value": typed}}
    answer = await _submit(harness, form, mine, "U0ONCALL")
    assert "is resolved" in answer and "not posted" in answer, answer
    assert ">DB failover done\n>Replica lag &lt;!channel&gt; back to 0" in answer
    assert (await current(harness, incident)).current_status == "Rolled back"
    [refusal] = [
        e
        async for e in harness.services.audit.entries()
        if e.actor == "U0ONCALL" and e.action == "incident.update"
    ]
    assert refusal.outcome.startswith("refused: This incident is resolved")


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of this test's own, so stopping it stops no other test."""
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.postgres
async def test_a_form_the_database_cannot_take_gives_its_text_back(
    own_postgres: PostgresServer, make_harness: HarnessFactory
) -> None:
    """A form closes when it is accepted; the database then failed the update (or the
    declaration). The answer said nothing was changed, and everything typed was gone."""
    harness = await make_harness(database_url=own_postgres.create_database("forms"))
    incident = await declare(harness)
    room = incident.channel_id or ""
    [form] = await _open_forms(harness, room, ["U0ALICE"])
    await harness.command("declare", channel_id="C0GENERAL", user_id="U0BOB")
    [opened] = await harness.double.wait_for("views.open")
    typed = {
        "status": {"value": _select("identified")},
        "message": {"value": "Bad deploy of *checkout*\nRolling back now"},
    }
    declared = {
        "title": {"value": "Search returns nothing"},
        "severity": {"value": _select("P2")},
        "impact": {"value": "No results for anyone"},
    }
    own_postgres.pause()
    try:
        answer = await _submit(harness, form, typed, "U0ALICE")
        view = opened.response["view"]
        await harness.submit_view(modals.DECLARE_VIEW, declared, view=view, user_id="U0BOB")
        await until(lambda: _told(harness, "U0BOB"), "the declaration's answer")
    finally:
        own_postgres.resume()
    assert "nothing was changed" in answer, answer
    assert answer.endswith("Here is what you wrote:\n>Bad deploy of *checkout*\n>Rolling back now")
    [refused] = _told(harness, "U0BOB")
    assert "nothing was changed" in refused, refused
    wrote = "Here is what you wrote:\n>Search returns nothing\n>No results for anyone"
    assert refused.endswith(wrote), refused


def _told(harness: BotHarness, user: str) -> list[str]:
    """What `user` was told, privately or by direct message."""
    private = [str(e["text"]) for e in harness.double.ephemerals if e["user"] == user]
    direct = [
        str(c.params["text"])
        for c in harness.double.calls_to("chat.postMessage")
        if c.ok and c.params.get("channel") == user
    ]
    return private + direct
