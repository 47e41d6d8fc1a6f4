"""An alert storm decided by two replicas at once (two stores on one database, as two
processes are): whatever the interleaving, alerts open at most `storm.max_incidents`
incidents and one storm incident takes the rest (bot.alerts.storm's lock)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.alerts import intake
from bot.alerts.models import read_alertmanager
from bot.alerts.storm import TITLE
from bot.app import build_client
from bot.clock import FakeClock
from bot.console.workspace import SlackDouble
from bot.models import SYSTEM
from bot.services import Services, build_services
from bot.slack.notifier import SlackNotifier
from bot.store import create_store
from tests.alert_helpers import alert, webhook
from tests.e2e.incident_helpers import policy_with
from tests.harness import BOT_TOKEN, openapi_spec

ALERTS_ENV = {"T": "alerts-token-for-tests"}  # the policies' alerts.token_env


async def _decide(replica: Services, services: list[str]) -> Counter[str]:
    """Decide these services' alerts one by one, as a replica's worker does."""
    assert replica.alerts is not None
    decided: Counter[str] = Counter()
    for service in services:
        decided += await replica.alerts._decide_service(service)
    return decided


@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])
async def test_two_replicas_deciding_different_services_open_five_and_one_storm(
    store_kind: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    migrated_sqlite: Callable[[Path], str],
) -> None:
    url = (
        migrated_sqlite(tmp_path / "storm.db")
        if store_kind == "sqlite"
        else request.getfixturevalue("migrated_postgres_url")
    )
    # P2: no war room, the test is about the decisions.
    policy = policy_with(alerts={"token_env": "T", "storm": {"max_incidents": 5}})
    double = SlackDouble(bot_token=BOT_TOKEN, openapi_spec=openapi_spec())
    await double.start()
    client = build_client(BOT_TOKEN, double.api_url)
    replicas = [
        build_services(
            env=ALERTS_ENV, policy=policy, store=create_store(url), notifier=SlackNotifier(client)
        )
        for _ in range(2)
    ]
    try:
        for replica in replicas:
            await replica.start(run_dispatcher=False, run_scheduler=False)
        names = [f"svc{n:02d}" for n in range(16)]
        raw = json.dumps(webhook([alert("Down", s, severity="warning") for s in names])).encode()
        first = replicas[0]
        receipt = await intake.record(
            first.store, first.clock, policy.alerts, "alertmanager", read_alertmanager(raw).alerts
        )
        assert receipt.outcomes == {"new": 16}
        # Each replica decides other services at the same moment: one from the first, the
        # other from the last, so both reach the cap together.
        decided = await asyncio.gather(
            _decide(replicas[0], names[:8]), _decide(replicas[1], names[:7:-1])
        )
        assert decided[0] + decided[1] == {"declared": 5, "stormed": 11}
        async with first.store.transaction() as tx:
            rows = await tx.fetchall("SELECT outcome, incident_id FROM alerts")
            incidents = await tx.fetchall("SELECT id, title FROM incidents")
        assert len(incidents) == 6
        [storm] = [i["id"] for i in incidents if i["title"] == TITLE]
        assert {r["incident_id"] for r in rows if r["outcome"] == "stormed"} == {storm}
    finally:
        for replica in replicas:
            await replica.close()
        await double.stop()


@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])
async def test_two_replicas_deciding_a_flap_reopen_five_and_fold_the_rest(
    store_kind: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    migrated_sqlite: Callable[[Path], str],
) -> None:
    """Reopenings count toward the cap under the same lock: 16 resolved incidents re-firing
    at once reopen 5, whichever replica decides which, and one storm incident takes 11."""
    url = (
        migrated_sqlite(tmp_path / "flap.db")
        if store_kind == "sqlite"
        else request.getfixturevalue("migrated_postgres_url")
    )
    clock = FakeClock(datetime.now(UTC))
    uncapped = policy_with(alerts={"token_env": "T", "storm": {"max_incidents": 0}})
    policy = policy_with(alerts={"token_env": "T", "storm": {"max_incidents": 5}})
    double = SlackDouble(bot_token=BOT_TOKEN, openapi_spec=openapi_spec())
    await double.start()
    client = build_client(BOT_TOKEN, double.api_url)
    replicas = [
        build_services(
            env=ALERTS_ENV,
            policy=p,
            store=create_store(url),
            notifier=SlackNotifier(client),
            clock=clock,
        )
        for p in (uncapped, policy, policy)
    ]
    try:
        for replica in replicas:
            await replica.start(run_dispatcher=False, run_scheduler=False)
        setup, first, second = replicas
        names = [f"svc{n:02d}" for n in range(16)]

        async def fire(replica: Services, starts_at: str) -> None:
            alerts = [alert("Down", s, severity="warning", starts_at=starts_at) for s in names]
            raw = json.dumps(webhook(alerts)).encode()
            receipt = await intake.record(
                replica.store, clock, policy.alerts, "alertmanager", read_alertmanager(raw).alerts
            )
            assert receipt.outcomes == {"new": 16}

        # The outage: 16 incidents (no cap), resolved; the storm window passes.
        await fire(setup, "2026-12-05T04:00:00Z")
        assert await _decide(setup, names) == {"declared": 16}
        for incident in await setup.incidents.list():
            await setup.incidents.resolve(incident.id, SYSTEM, summary="over")
        clock.advance(minutes=11)
        # The flap, decided by two replicas at once from either end.
        await fire(first, "2026-12-05T05:00:00Z")
        decided = await asyncio.gather(_decide(first, names[:8]), _decide(second, names[:7:-1]))
        assert decided[0] + decided[1] == {"reopened": 5, "stormed": 11, "cleared": 16}
        async with first.store.transaction() as tx:
            reopened = await tx.fetchall("SELECT 1 FROM timeline WHERE kind = 'reopened'")
            incidents = await tx.fetchall("SELECT id, title, status FROM incidents")
        assert len(reopened) == 5 and len(incidents) == 17
        assert sum(i["status"] != "resolved" for i in incidents) == 6
        assert [i["title"] for i in incidents].count(TITLE) == 1
    finally:
        for replica in replicas:
            await replica.close()
        await double.stop()
