"""Two bot processes on one PostgreSQL and one Redis, behind a round-robin front, as the
Deployment in deploy/ runs them: a Slack retry lands on the other replica and still makes
one incident; each reminder fires once; twenty approvals spread over both run one action."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.console.workspace import SlackDouble
from bot.slack.limits import SlackLimits
from bot.slack.requests import SlackRequestSender, slash_command_body
from tests.e2e.test_remediate_processes import _approve, _request, _scale_writes, _status
from tests.fake_kubernetes import FakeKubernetes, deployment
from tests.harness import BOT_TOKEN, PACE_SCALE, SIGNING_SECRET, openapi_spec
from tests.processes import (
    BotProcess,
    RoundRobinFront,
    bot_env,
    count,
    fired_reminders,
    incident_ids,
    outbox_empty,
)
from tests.waiting import until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

POLICY = """\
announce_channel: C0INCIDENTS
war_room_severities: []
severities:
  P0: {ack_within: 3, resolve_within: 3600, update_every: 3600}
  P1: {ack_within: 3, resolve_within: 3600, update_every: 3600}
  P2: {ack_within: 3, resolve_within: 3600, update_every: 3600}
  P3: {ack_within: 3, resolve_within: 3600}
escalation:
  P1:
    - {after: 0, notify: [U0ONCALL]}
    - {after: 2, notify: [U0LEAD]}
roles:
  approvers: [S0SRE]
remediation: {timeout: 3}
services:
  checkout:
    kubernetes: {context: test, namespace: shop, deployments: [checkout], timeout: 2,
                 min_replicas: 1, max_replicas: 12}
"""
INCIDENTS = 4


class Front:
    """The front, dressed as one bot for the remediation helpers (`sender`, `log()`)."""

    def __init__(self, front: RoundRobinFront, bots: list[BotProcess]) -> None:
        self.sender = SlackRequestSender(front.url, SIGNING_SECRET)
        self.bots = bots

    def log(self) -> str:
        return "\n".join(f"--- {bot.name}\n{bot.log()}" for bot in self.bots)


@pytest.fixture
async def double() -> AsyncIterator[SlackDouble]:
    slack = SlackDouble(
        bot_token=BOT_TOKEN, openapi_spec=openapi_spec(), rate_limits=SlackLimits(scale=PACE_SCALE)
    )
    slack.add_usergroup("S0SRE", [f"U0SRE{n:02d}" for n in range(20)])
    await slack.start()
    yield slack
    await slack.stop()
    assert slack.violations == [], slack.violations


async def test_two_replicas_behind_a_round_robin_front(
    double: SlackDouble,
    postgres_url: str,
    redis_url: str,
    fake_kubernetes: FakeKubernetes,
    tmp_path: Path,
) -> None:
    fake_kubernetes.state.add(deployment("checkout", namespace="shop", replicas=3))
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    env = bot_env(double, postgres_url, policy, redis_url=redis_url, sweep=0.5)
    bots = [BotProcess(name, env, tmp_path) for name in ("a", "b")]
    try:
        await asyncio.gather(*(bot.ready() for bot in bots))  # the front needs their ports
    except BaseException:
        for bot in bots:
            await bot.stop()
        raise
    front = RoundRobinFront([bot.url for bot in bots])
    await front.start()
    client = Front(front, bots)
    try:
        # Each declaration, then Slack's retries of it: each copy on the next replica.
        for number in range(INCIDENTS):
            body = slash_command_body(
                command="/incident",
                text=f"declare P1 Outage {number}",
                user_id="U0ALICE",
                channel_id="C0GENERAL",
                response_url=double.new_response_url(channel="C0GENERAL", user_id="U0ALICE"),
            )
            for retry in (None, 1, 2):
                answer = await client.sender.send(body, retry_num=retry)
                assert answer.status == 200, client.log()
        assert len(set(front.served)) == 2

        # Twenty approvers click Approve at once, the clicks spread over both replicas, while
        # the incidents' reminders come due (level 2 at 2 s, the ack breach at 3 s).
        message = await _request(double, client)  # type: ignore[arg-type]
        await asyncio.gather(
            *(_approve(double, client, message, f"U0SRE{n:02d}") for n in range(20))  # type: ignore[arg-type]
        )

        async def finished() -> bool:
            return await _status(postgres_url) == "succeeded"

        await until(finished, "the remediation to succeed", timeout=20)

        async def all_fired() -> bool:
            return (
                count(double, "Escalation level 2") >= INCIDENTS
                and count(double, "missed its acknowledgement") >= INCIDENTS
            )

        await until(all_fired, "every level-2 page and breach warning", timeout=15)
        await until(lambda: outbox_empty(postgres_url), "the outbox to drain", timeout=10)
    finally:
        await client.sender.close()
        await front.stop()
        for bot in bots:
            await bot.stop()

    titles = await incident_ids(postgres_url)
    outages = sorted(i for title, i in titles.items() if title.startswith("Outage"))
    for number in range(INCIDENTS):
        assert count(double, f"Incident Update: Outage {number}") == 1
    assert len(outages) == INCIDENTS  # one incident per declaration, retries and all
    rows = [r for r in await fired_reminders(postgres_url) if r["incident_id"] in outages]
    fired = [r for r in rows if r["status"] == "fired"]
    assert len(fired) == 3 * INCIDENTS  # level 1, level 2 and the ack breach, once each
    for incident_id in outages:
        assert count(double, "Escalation level 1", incident_id) == 1
        assert count(double, "Escalation level 2", incident_id) == 1
        assert count(double, "missed its acknowledgement", incident_id) == 1
    assert _scale_writes(fake_kubernetes) == 1
    assert fake_kubernetes.state.deployments[("shop", "checkout")]["spec"]["replicas"] == 5
