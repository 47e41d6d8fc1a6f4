"""A Slack Connect channel shares the incident cards with another organisation. With the
policy's "everyone may respond" (empty role lists), everyone means the bot's own
organisation: a partner's user pressing Escalate or Acknowledge is refused, unless the policy
names them."""

from __future__ import annotations

from bot.slack import blocks
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import count, current, declare, pinned_summary, policy_with
from tests.harness import BotHarness

PARTNER_TEAM = "T0PARTNER"  # not the workspace the bot is installed in (the double's T0TEST)


async def _press(harness: BotHarness, action: str, room: str, user: str, team: str) -> str:
    summary = pinned_summary(harness, room)
    response = await harness.click(
        action,
        message=summary,
        channel_id=room,
        user_id=user,
        message_ts=summary["ts"],
        team_id=team,
    )
    assert response.status == 200
    [answer] = await harness.replies()
    return str(answer["text"])


async def test_a_user_of_another_organisation_cannot_page_or_acknowledge(
    harness: BotHarness,
) -> None:
    incident = await declare(harness)
    room = incident.channel_id or ""
    for action in (blocks.ESCALATE_ACTION, blocks.ACK_ACTION, blocks.RESOLVE_ACTION):
        answer = await _press(harness, action, room, "U0PARTNER", PARTNER_TEAM)
        assert "not allowed" in answer.lower() or "only" in answer.lower(), answer
    assert await count(harness, "reminders WHERE actor IS NOT NULL") == 0
    stored = await current(harness, incident)
    assert stored.acknowledged_at is None and stored.is_open
    outcomes = [e.outcome async for e in harness.services.audit.entries() if e.actor == "U0PARTNER"]
    assert outcomes == ["refused: not allowed"] * 3
    # The bot's own people still may: everyone of its organisation.
    answer = await _press(harness, blocks.ACK_ACTION, room, "U0BOB", "T0TEST")
    assert "You acknowledged" in answer


async def test_a_partner_the_policy_names_may_respond(make_harness: HarnessFactory) -> None:
    roles = {"responders": ["U0PARTNER", "U0ALICE"], "approvers": ["U0ENGLEAD"]}
    harness = await make_harness(policy=policy_with(roles=roles))
    incident = await declare(harness)
    answer = await _press(
        harness, blocks.ACK_ACTION, incident.channel_id or "", "U0PARTNER", PARTNER_TEAM
    )
    assert "You acknowledged" in answer


async def test_only_responders_write_notes_on_the_timeline(make_harness: HarnessFactory) -> None:
    # Whoever the policy's responders leave out could still write a note into the incident's
    # timeline (and so its report), the one change that asked for no role.
    roles = {"responders": ["U0ALICE"], "approvers": ["U0ENGLEAD"]}
    harness = await make_harness(policy=policy_with(roles=roles))
    incident = await declare(harness)
    room = incident.channel_id or ""
    before = await count(harness, "timeline")
    response = await harness.command(
        "note the database is fine, stop looking", channel_id=room, user_id="U0MALLORY"
    )
    assert response.status == 200
    [answer] = await harness.replies()
    assert "Only responders" in answer["text"], answer
    assert await count(harness, "timeline") == before
    outcomes = [e.outcome async for e in harness.services.audit.entries() if e.actor == "U0MALLORY"]
    assert outcomes == ["refused: not allowed"]
    await harness.command("note checked the replicas", channel_id=room)
    [answer] = await harness.replies()
    assert "Added your note" in answer["text"]
