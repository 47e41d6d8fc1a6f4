"""An incident the bot declares itself (automatic recovery gave up) has no person behind it:
`declared_by` is the bot's own actor and nobody is commander. The war room once invited
"chatops-bot" and the update reminder was a DM to it; Slack has no such user, so both failed
(user_not_found) and nobody was reminded. Now the bot's actor is never addressed: the war
room invites real people, and the reminder goes to the incident channel, mentioning the
first escalation level."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.models import SYSTEM, Incident
from bot.policy import parse_policy
from bot.remediation.recovery_plan import Verdict
from bot.slack.rich import mrkdwn
from tests.escalation_env import MATRIX_POLICY, Env, start_env, stop_env
from tests.fake_kubernetes import FakeKubernetes, deployment

# Checkout's recovery declares a P1 when it gives up: a war room and hourly updates.
RECOVERY_P1 = """
services:
  checkout:
    kubernetes: {context: test, namespace: shop, deployments: [checkout]}
    auto_recovery:
      {restart_unhealthy: true, max_restarts: 1, window: 1h, check_every: 1m, severity: P1}
"""


@pytest.fixture
async def env(tmp_path: Path, fake_kubernetes: FakeKubernetes) -> AsyncIterator[Env]:
    fake_kubernetes.state.add(deployment("checkout", namespace="shop", replicas=3, ready=1))
    policy = parse_policy(MATRIX_POLICY + RECOVERY_P1, source="<recovery P1 policy>")
    started = await start_env(f"sqlite:///{tmp_path}/bot-declared.db", policy=policy)
    yield started
    await stop_env(started)


async def _declared_by_recovery(env: Env) -> Incident:
    """Check every minute until recovery gives up and declares the incident."""
    for _ in range(10):
        results = await env.services.recovery.check_due()
        await env.deliver()
        verdicts = [dec.verdict for r in results for dec in r.decisions.values()]
        if Verdict.GIVE_UP in verdicts:
            [incident] = await env.services.incidents.list()
            return incident
        env.clock.advance(minutes=1)
    raise AssertionError("automatic recovery never gave up")


def _failed_calls(env: Env) -> list[tuple[str, object]]:
    return [(c.method, c.response.get("error")) for c in env.double.calls if not c.ok]


async def test_war_room_and_update_reminder_reach_real_people(env: Env) -> None:
    incident = await _declared_by_recovery(env)
    assert incident.declared_by == SYSTEM.user_id and incident.commander is None
    incident = await env.services.incidents.get(incident.id)
    assert incident.channel_id is not None  # a P1: the war room is open

    invited = [
        user
        for call in env.double.calls_to("conversations.invite")
        for user in str(call.params["users"]).split(",")
    ]
    assert "U0ONCALL" in invited  # the first level is in the room
    assert SYSTEM.user_id not in invited
    assert _failed_calls(env) == []

    # P1 wants an update every hour: the reminder is due, and nobody leads the incident.
    await env.step(hours=1)
    reminders = [
        call for call in env.posts("status update") if call.params["channel"] == incident.channel_id
    ]
    assert len(reminders) == 1
    assert "<@U0ONCALL>" in reminders[0].params["text"]
    assert "take command" in reminders[0].params["text"]
    assert env.dms("status update") == {}
    assert [
        c for c in env.double.calls_to("conversations.open") if c.params["users"] == "chatops-bot"
    ] == []
    assert _failed_calls(env) == []
    assert "notification_failed" not in await env.timeline_kinds(incident)
    timeline = await env.services.incidents.timeline(incident.id)
    # The stored lines name the bot as such: Slack has no user to mention behind its actor.
    assert not [e.text for e in timeline if f"<@{SYSTEM.user_id}>" in mrkdwn(e.parts, e.said)]
    assert any(e.text.startswith("Declared P1 by the bot:") for e in timeline)
    [reminded] = [e for e in timeline if e.kind == "reminded"]
    assert "<@U0ONCALL>" in mrkdwn(reminded.parts) and SYSTEM.user_id not in reminded.text


async def test_the_report_says_the_bot_declared_it(env: Env) -> None:
    """The post-incident report printed "by @chatops-bot" (and the timeline's raw
    "<@chatops-bot>"), a handle nobody has: the bot's own actor reads "the bot"."""
    incident = await _declared_by_recovery(env)
    _, text = await env.services.reports.report_markdown(incident.id)
    [declared] = [line for line in text.splitlines() if line.startswith("| Declared |")]
    assert declared.endswith(" by the bot |"), declared
    assert "| Commander | — |" in text
    assert f"Declared P1 by the bot: {incident.title}" in text  # the timeline's line
    assert "@chatops-bot" not in text and "<@" not in text
