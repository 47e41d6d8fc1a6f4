"""Bugs users met in Grafana OnCall's escalation, each replayed against this engine.

grafana/oncall #1931  escalation ignored its wait step
grafana/oncall #4654  notifications went on after the page was acknowledged
grafana/oncall #1206  an escalation paused across a restart never resumed
grafana/oncall #3161  an acknowledgement racing a resolve un-resolved the alert
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.errors import Conflict
from bot.escalation import ReminderKind
from bot.models import IncidentRole, Status
from bot.reminders import FireResult, ReminderStatus
from bot.reminders import storage as reminder_storage
from tests.escalation_env import ALICE, BOB, Env, probe, start_env, stop_env
from tests.waiting import until

K = ReminderKind
MIN = timedelta(minutes=1)


@pytest.fixture(params=["sqlite", "postgres"])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    url = (
        f"sqlite:///{tmp_path}/grafana.db"
        if request.param == "sqlite"
        else request.getfixturevalue("migrated_postgres_url")
    )
    started = await start_env(url)
    yield started
    await stop_env(started)


async def test_grafana_oncall_1931_the_wait_before_the_next_level_is_honoured(env: Env) -> None:
    incident = await env.declare("P1")
    [level2] = [r for r in await env.reminders(incident) if r.level == 2]
    env.clock.advance(minutes=29, seconds=59)

    # Everything that could cut the wait short: a direct fire, a sweep, activity on the
    # incident (which re-plans nothing but the update reminder), and a timer that wakes early.
    assert await env.services.reminders.fire(level2.id) is FireResult.NOT_CLAIMED
    assert await env.services.reminders.sweep() == 0
    await env.services.incidents.add_note(incident.id, BOB, text="looking at the load balancer")
    await env.services.incidents.assign(
        incident.id, ALICE, role=IncidentRole.TECH_LEAD, user_id="U0BOB"
    )
    await env.services.incidents.update_status(
        incident.id, ALICE, status=Status.IDENTIFIED, message="Bad deploy"
    )
    fires = probe(env.services.reminders.firing, "fire")
    await env.services.reminders.start()  # the scheduler's first sweep holds a job for it
    try:
        env.clock.advance(seconds=0.5)  # half a second to go when the job wakes
        await until(lambda: any(args == (level2.id,) for args, _ in fires), "the job to wake")
        assert [result for args, result in fires if args == (level2.id,)] == [
            FireResult.NOT_CLAIMED
        ]
        await env.deliver()
        assert env.posts("Escalation level 2") == []
        [still] = [r for r in await env.reminders(incident) if r.level == 2]
        assert (still.id, still.status, still.due_at) == (
            level2.id,
            ReminderStatus.PENDING,
            level2.due_at,
        )
    finally:
        await env.services.reminders.stop()

    assert await env.step(seconds=0.5) == 2  # due now: the page and the ack breach
    assert len(env.posts("Escalation level 2")) == 1


async def test_grafana_oncall_4654_nothing_is_sent_after_the_acknowledgement(env: Env) -> None:
    # 1. Acknowledged before the wait is over: the job that still exists in memory exits.
    first = await env.declare("P1", "Checkout down")
    await env.step(minutes=20)
    await env.services.incidents.acknowledge(first.id, BOB)
    [level2] = [r for r in await env.reminders(first) if r.level == 2]
    await env.step(minutes=10)
    assert await env.services.reminders.fire(level2.id) is FireResult.NOT_CLAIMED

    # 2. Claimed by the scheduler, then acknowledged before it could fire: the firing
    #    transaction locks the incident, finds the reminder withdrawn, and exits.
    second = await env.declare("P1", "Search down")
    env.clock.advance(minutes=30)
    [level2] = [r for r in await env.reminders(second) if r.level == 2]
    owner = env.services.reminders.owner
    async with env.services.store.transaction() as tx:
        claimed = await reminder_storage.claim(tx, level2.id, owner, env.clock.now(), 30)
    assert claimed is not None
    await env.services.incidents.acknowledge(second.id, BOB)
    assert await env.services.reminders.firing.fire_claimed(claimed) is FireResult.LOST

    # 3. Fired, then acknowledged before Slack got it (an outage, a slow outbox): withdrawn.
    third = await env.declare("P1", "Payments down")
    env.clock.advance(minutes=30)
    assert await env.services.reminders.fire_due() >= 1
    await env.services.incidents.acknowledge(third.id, BOB)
    await env.deliver()

    assert env.posts("Escalation level 2") == []
    assert env.dms("escalation level 2") == {}
    for incident in (first, second, third):
        pages = [r for r in await env.reminders(incident) if r.kind == K.PAGE]
        assert [r.level for r in pages if r.status is ReminderStatus.FIRED] == [1] + (
            [2] if incident is third else []
        )


async def test_grafana_oncall_1206_escalation_resumes_after_a_restart(
    env: Env, request: pytest.FixtureRequest
) -> None:
    incident = await env.declare("P1")
    url = str(env.services.store.url)  # type: ignore[attr-defined]
    # The process is gone (no scheduler, nothing closed) while level 2 comes due.
    env.clock.advance(minutes=45)

    for restart in range(2):
        after = await start_env(url, clock=env.clock)
        try:
            sweeps = probe(after.services.reminders.scheduling, "sweep")
            await after.services.start()  # scheduler and outbox, as the bot starts them
            if restart == 0:
                await after.double.wait_for("chat.postMessage", 3, timeout=5.0)
            # Anything (wrongly) fired twice would be fired by the sweep at start-up.
            await until(lambda s=sweeps: len(s) >= 1, "the sweep at start-up")
            await after.services.dispatcher.drain()
            posts = after.posts() if restart == 0 else after.posts("Escalation level 2")
            texts = [str(call.params["text"]) for call in posts]
            if restart == 0:
                assert sum("Escalation level 2" in t for t in texts) == 1
                assert sum("missed its acknowledgement target" in t for t in texts) == 1
            else:
                assert texts == []  # the second restart repeats nothing
        finally:
            await stop_env(after)
    fired = await env.reminders(incident, ReminderStatus.FIRED)
    assert sorted((r.kind, r.level) for r in fired) == sorted(
        [(K.PAGE, 1), (K.PAGE, 2), (K.ACK_BREACH, 0)]
    )


async def test_grafana_oncall_3161_an_ack_racing_a_resolve_never_unresolves(env: Env) -> None:
    for round_ in range(4):
        incident = await env.declare("P1", f"Flapping alert {round_}")
        env.clock.advance(minutes=1)
        racers = [
            env.services.incidents.acknowledge(incident.id, BOB),
            env.services.incidents.resolve(incident.id, ALICE, summary="Recovered"),
        ]
        if round_ % 2:
            racers.reverse()
        results = await asyncio.gather(*racers, return_exceptions=True)
        for result in results:
            assert not isinstance(result, Exception) or isinstance(result, Conflict), result

        current = await env.services.incidents.get(incident.id)
        assert current.status is Status.RESOLVED and current.resolved_by == "U0ALICE"
        pending = await env.pending(incident)
        assert set(pending) == {(K.PRELIMINARY_REVIEW, 0), (K.FORMAL_REVIEW, 0)}
    await env.step(minutes=45)  # past every level-2 page and ack target
    assert env.posts("Escalation level 2") == []
    assert env.posts("missed its") == []
