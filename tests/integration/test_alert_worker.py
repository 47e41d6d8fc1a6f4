"""Alerts recorded by a replica that stopped before deciding them are decided by another:
the intake only records (`pending`), any process's worker decides, once, on both stores."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.alerts import intake
from bot.alerts.models import read_alertmanager
from bot.app import build_client
from bot.console.workspace import SlackDouble
from bot.services import build_services
from bot.slack.notifier import SlackNotifier
from bot.store import create_store
from tests.alert_helpers import alert, webhook
from tests.e2e.incident_helpers import policy_with
from tests.harness import BOT_TOKEN, openapi_spec


@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])
async def test_recorded_alerts_are_decided_by_any_process_once(
    store_kind: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    migrated_sqlite: Callable[[Path], str],
) -> None:
    url = (
        migrated_sqlite(tmp_path / "alerts.db")
        if store_kind == "sqlite"
        else request.getfixturevalue("migrated_postgres_url")
    )
    policy = policy_with(alerts={"token_env": "T"})
    double = SlackDouble(bot_token=BOT_TOKEN, openapi_spec=openapi_spec())
    await double.start()
    client = build_client(BOT_TOKEN, double.api_url)
    stopped = build_services(policy=policy, store=create_store(url), notifier=SlackNotifier(client))
    other = build_services(policy=policy, store=create_store(url), notifier=SlackNotifier(client))
    try:
        await stopped.start(run_dispatcher=False, run_scheduler=False)
        await other.start(run_dispatcher=False, run_scheduler=False)
        raw = json.dumps(webhook([alert("A", "checkout"), alert("B", "checkout")])).encode()
        # The first replica records, then stops before its worker runs.
        receipt = await intake.record(
            stopped.store, stopped.clock, policy.alerts, "alertmanager", read_alertmanager(raw)
        )
        assert receipt.outcomes == {"new": 2}
        await stopped.close()
        assert other.alerts is not None
        assert await other.alerts.process_pending() == {"declared": 2}
        assert await other.alerts.process_pending() == {}  # decided once
        [incident] = await other.incidents.list()
        assert incident.title == "checkout: A on checkout (+1 more alerts)"
    finally:
        await other.close()
        await double.stop()


async def test_control_and_bidi_characters_in_alert_text_never_stick_an_alert(
    tmp_path: Path, migrated_sqlite: Callable[[Path], str]
) -> None:
    """A typed title refuses control and bidi characters; a monitor's summary may hold them.
    Once such an alert could not be declared and stayed pending, retried for ever."""
    policy = policy_with(alerts={"token_env": "T"})
    double = SlackDouble(bot_token=BOT_TOKEN, openapi_spec=openapi_spec())
    await double.start()
    client = build_client(BOT_TOKEN, double.api_url)
    services = build_services(
        policy=policy,
        store=create_store(migrated_sqlite(tmp_path / "a.db")),
        notifier=SlackNotifier(client),
    )
    try:
        await services.start(run_dispatcher=False, run_scheduler=False)
        assert services.alerts is not None
        hostile = alert("Odd", "checkout", summary="disk \u202efull\x07 now\nreally")
        raw = json.dumps(webhook([hostile, alert("Fine", "search")])).encode()
        await services.alerts.receive("alertmanager", read_alertmanager(raw))
        assert await services.alerts.process_pending() == {"declared": 2}
        titles = sorted(i.title for i in await services.incidents.list())
        assert titles == ["checkout: disk full now really", "search: Fine on search"]
    finally:
        await services.close()
        await double.stop()
