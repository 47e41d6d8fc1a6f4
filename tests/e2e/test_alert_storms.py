"""An alert storm across many services (bot.alerts.storm), end to end against the Slack
double: past `storm.max_incidents` incidents within `storm.window`, the services whose alerts
would open more are folded into one storm incident; nothing is lost, one page for all."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from bot.alerts.storm import TITLE
from bot.clock import FakeClock
from bot.incidents.schemas import SERVICES_MAX, DeclareIncident
from bot.models import SYSTEM, Actor, Incident, Severity
from tests.alert_helpers import TOKEN, alert
from tests.e2e.alert_env import Alerts, alerts_policy, health_url
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import posts

__all__ = ["health_url"]  # the fixture, used here

Start = Callable[..., Awaitable[Alerts]]


@pytest.fixture
async def start(
    make_harness: HarnessFactory, health_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Start]:
    """Start the bot on `store` with `alerts:` settings added to the tests' own."""
    monkeypatch.setenv("ALERTS_TOKEN", TOKEN)
    async with aiohttp.ClientSession() as session:

        async def started(
            store: str = "sqlite",
            pace_scale: float = 20,
            clock: FakeClock | None = None,
            **settings: Any,
        ) -> Alerts:
            policy = alerts_policy(health_url, **settings)
            harness = await make_harness(store, policy=policy, pace_scale=pace_scale, clock=clock)
            return Alerts(harness, session)

        yield started


def _services(count: int) -> list[str]:
    return [f"svc{n:02d}" for n in range(count)]


async def _storm(alerts: Alerts, services: list[str], **kwargs: Any) -> None:
    """One post, as a misconfigured Alertmanager sends it: an alert for each service."""
    status, body = await alerts.send(*(alert("Down", s, **kwargs) for s in services))
    assert (status, body["outcomes"]) == (200, {"new": len(services)})
    await alerts.settled()


async def _decided(alerts: Alerts) -> dict[str, tuple[str, str]]:
    """Each service's alert: (outcome, incident) (one alert per service in these tests)."""
    rows = await alerts.alert_rows()
    return {str(r["service"]): (str(r["outcome"]), str(r["incident_id"])) for r in rows}


async def _storm_incident(alerts: Alerts) -> Incident:
    [storm] = [i for i in await alerts.incidents() if i.title == TITLE]
    return await alerts.harness.services.incidents.get(storm.id)


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_a_storm_for_thirty_services_opens_five_incidents_and_one_storm(
    start: Start, store: str
) -> None:
    # The defaults: 5 incidents within 10 minutes. Six war rooms at Slack's pace for
    # conversations.create (tier 2) take seconds: the double's clock runs faster here.
    alerts = await start(store, pace_scale=200)
    services = _services(30)
    await _storm(alerts, services)
    incidents = await alerts.incidents()
    assert len(incidents) == 6
    storm = await _storm_incident(alerts)
    decided = await _decided(alerts)
    # The worker decides services in their order: the first five open their incidents.
    assert {s for s, (outcome, _) in decided.items() if outcome == "declared"} == set(services[:5])
    folded = services[5:]
    assert {s: decided[s] for s in folded} == {s: ("stormed", storm.id) for s in folded}
    assert storm.severity is Severity.P1 and storm.declared_by == SYSTEM.user_id
    # The incident names as many as an incident may hold; its timeline counts them all.
    assert storm.services == tuple(folded[:SERVICES_MAX])
    lines = [
        e.text
        for e in await alerts.harness.services.incidents.timeline(storm.id)
        if e.kind == "alerts_stormed"
    ]
    assert len(lines) == 25 and "25 services folded in so far" in lines[-1]
    assert "declare an incident naming it" in lines[0] and lines[-1].endswith("svc29: Down")
    assert storm.current_status == "Alerts: 25 firing, 0 resolved."
    # Its message in the war room says whose each alert is (one incident's do not).
    assert storm.channel_id is not None
    told = [m for m in alerts.alert_messages(storm.channel_id) if m.endswith(" firing")]
    assert sum(int(m.split()[1]) for m in told) == 25  # in a batch or two (batch_window 0)
    room = posts(alerts.harness, storm.channel_id)
    blocks = json.dumps([c.params["blocks"] for c in room], ensure_ascii=False)
    assert "*Down* (svc05)" in blocks
    first = await alerts.harness.services.incidents.get(decided["svc00"][1])
    assert first.channel_id is not None
    assert "(svc00)" not in json.dumps([c.params for c in posts(alerts.harness, first.channel_id)])
    # Six war rooms, six announcements, six pages: not thirty of each.
    calls = Counter(c.method for c in alerts.harness.double.calls if c.ok)
    assert calls["conversations.create"] == 6
    announced = [
        c
        for c in alerts.harness.double.calls_to("chat.postMessage")
        if c.ok and c.params.get("channel") == alerts.harness.services.policy.announce_channel
    ]
    assert len(announced) == 6
    pages = await _pages(alerts)
    assert pages == {i.id: 1 for i in incidents} and storm.id in pages


async def _pages(alerts: Alerts) -> Counter[str]:
    """The on-call's pages, by incident."""
    async with alerts.harness.store.transaction() as tx:
        rows = await tx.fetchall("SELECT incident_id FROM timeline WHERE kind = 'paged'")
    return Counter(str(r["incident_id"]) for r in rows)


async def test_later_alerts_of_a_folded_service_join_the_storm_and_raise_it(
    start: Start,
) -> None:
    alerts = await start(storm={"max_incidents": 2, "window": "10m"})
    await _storm(alerts, _services(5), severity="warning")
    storm = await _storm_incident(alerts)
    assert storm.severity is Severity.P2 and storm.services == ("svc02", "svc03", "svc04")
    calls = len(alerts.harness.double.calls_to("conversations.create"))

    # A critical alert of a folded service joins the storm and raises it (war room, page).
    status, _ = await alerts.send(alert("Latency", "svc03"))
    assert status == 200
    await alerts.settled()
    rows = await alerts.alert_rows()
    assert (rows[-1]["outcome"], rows[-1]["incident_id"]) == ("attached", storm.id)
    assert (await _storm_incident(alerts)).severity is Severity.P1
    assert len(alerts.harness.double.calls_to("conversations.create")) == calls + 1
    # A new service past the cap is folded into the same storm, named on it.
    await _storm(alerts, ["billing"], severity="warning")
    after = await _storm_incident(alerts)
    assert after.id == storm.id and after.services[-1] == "billing"
    assert len(await alerts.incidents()) == 3

    # Once it is resolved, the next overflow opens a new storm incident.
    await alerts.harness.services.incidents.resolve(storm.id, SYSTEM, summary="over")
    await _storm(alerts, ["search"], severity="warning")
    [new] = [i for i in await alerts.incidents() if i.title == TITLE and i.is_open]
    assert new.id != storm.id and new.services == ("search",)


async def test_max_incidents_0_opens_one_incident_per_service_as_before(start: Start) -> None:
    alerts = await start(storm={"max_incidents": 0})
    await _storm(alerts, _services(8), severity="warning")
    decided = await _decided(alerts)
    assert [outcome for outcome, _ in decided.values()] == ["declared"] * 8
    assert len({incident for _, incident in decided.values()}) == 8
    assert TITLE not in {i.title for i in await alerts.incidents()}


async def test_a_person_splits_a_service_out_of_the_storm(start: Start) -> None:
    alerts = await start(storm={"max_incidents": 1, "window": "10m"})
    await _storm(alerts, _services(4), severity="warning")
    storm = await _storm_incident(alerts)
    assert storm.services == ("svc01", "svc02", "svc03")
    # A person follows svc02 apart, naming it in a declaration (the form's services).
    split = await alerts.harness.services.incidents.declare(
        DeclareIncident(severity=Severity.P2, title="svc02 is down", services=("svc02",)),
        Actor("U0ALICE"),
    )
    for n, name in enumerate(["Again", "AndAgain"]):
        status, _ = await alerts.send(alert(name, "svc02", severity="warning", n=str(n)))
        assert status == 200
        await alerts.settled()
        rows = await alerts.alert_rows()
        assert (rows[-1]["outcome"], rows[-1]["incident_id"]) == ("attached", split.id)
    # The other folded services still join the storm.
    await alerts.send(alert("Again", "svc03", severity="warning"))
    await alerts.settled()
    rows = await alerts.alert_rows()
    assert (rows[-1]["service"], rows[-1]["incident_id"]) == ("svc03", storm.id)
    events = await alerts.harness.services.incidents.timeline(split.id)
    assert json.dumps([e.kind for e in events]).count("alerts_attached") == 2


async def test_the_cap_counts_the_incidents_alerts_opened_within_the_window(start: Start) -> None:
    clock = FakeClock(datetime.now(UTC))
    alerts = await start(clock=clock, storm={"max_incidents": 2, "window": "10m"})
    await _storm(alerts, ["a1", "a2", "a3"], severity="warning")
    storm = await _storm_incident(alerts)
    clock.advance(minutes=9)  # the two incidents are still within the window
    await _storm(alerts, ["b1"], severity="warning")
    assert (await _decided(alerts))["b1"] == ("stormed", storm.id)
    clock.advance(minutes=2)  # past it: services open incidents of their own again
    await _storm(alerts, ["c1", "c2", "c3"], severity="warning")
    decided = await _decided(alerts)
    assert [decided[s][0] for s in ("c1", "c2", "c3")] == ["declared", "declared", "stormed"]
    assert decided["c3"][1] == storm.id  # the storm incident is still open: it takes c3


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_a_flap_re_firing_resolved_incidents_reopens_up_to_the_cap_then_folds(
    start: Start, store: str
) -> None:
    """Once every re-firing alert reopened its incident, each reopening paging again: a flap
    after a region-wide outage resolved as many incidents paged once per incident."""
    clock = FakeClock(datetime.now(UTC))
    alerts = await start(store, clock=clock, storm={"max_incidents": 3, "window": "10m"})
    # An afternoon below the cap: six incidents, three per window.
    await _storm(alerts, _services(3), severity="warning")
    clock.advance(minutes=11)
    await _storm(alerts, _services(6)[3:], severity="warning")
    first = await _decided(alerts)
    assert {outcome for outcome, _ in first.values()} == {"declared"}
    clock.advance(minutes=11)
    for _, incident_id in first.values():
        await alerts.harness.services.incidents.resolve(incident_id, SYSTEM, summary="over")
    clock.advance(minutes=1)

    # The flap: every alert fires again (a new start), within `reopen_within` (1 h).
    await _storm(alerts, _services(6), severity="warning", starts_at="2026-12-05T05:00:00Z")
    rows = await alerts.alert_rows()
    again = {str(r["service"]): (str(r["outcome"]), str(r["incident_id"])) for r in rows[6:]}
    storm = await _storm_incident(alerts)
    assert again == {
        **{s: ("reopened", first[s][1]) for s in _services(3)},
        **{s: ("stormed", storm.id) for s in _services(6)[3:]},
    }
    assert storm.services == ("svc03", "svc04", "svc05") and storm.is_open
    incidents = {i.id: i for i in await alerts.incidents()}
    assert [incidents[first[s][1]].is_open for s in _services(6)] == [True] * 3 + [False] * 3
    async with alerts.harness.store.transaction() as tx:
        reopenings = await tx.fetchall("SELECT incident_id FROM timeline WHERE kind = 'reopened'")
    assert sorted(r["incident_id"] for r in reopenings) == sorted(first[s][1] for s in _services(3))
    # The old incident says where its alerts went; the storm's line, which incident they left.
    old = await alerts.harness.services.incidents.timeline(first["svc04"][1])
    [moved] = [e.text for e in old if e.kind == "alerts_moved"]
    assert storm.id in moved and moved.endswith(": Down")
    lines = [
        e.text
        for e in await alerts.harness.services.incidents.timeline(storm.id)
        if e.kind == "alerts_stormed"
    ]
    assert f"firing again after {first['svc04'][1]} was resolved" in lines[1]
    # A folded service's next alert joins the storm, as a newly folded service's does.
    await _storm(alerts, ["svc05"], severity="warning", starts_at="2026-12-05T06:00:00Z")
    assert (await alerts.alert_rows())[-1]["incident_id"] == storm.id


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_a_resolved_storm_firing_again_joins_the_open_storm_not_a_second_one(
    start: Start, store: str
) -> None:
    """A storm incident was resolved and a later storm opened another. Below the cap, the
    first one's services firing again reopened it: two storm incidents open at once, two war
    rooms and two pages for one storm, and a later alert with two storms to choose from."""
    clock = FakeClock(datetime.now(UTC))
    alerts = await start(store, clock=clock, storm={"max_incidents": 2, "window": "10m"})
    await _storm(alerts, ["a1", "a2", "a3", "a4", "a5"], severity="warning")
    [first] = [i for i in await alerts.incidents() if i.title == TITLE]
    assert first.services == ("a3", "a4", "a5")
    await alerts.harness.services.incidents.resolve(first.id, SYSTEM, summary="over")
    clock.advance(minutes=11)
    await _storm(alerts, ["b1", "b2", "b3"], severity="warning")
    [second] = [i for i in await alerts.incidents() if i.title == TITLE and i.is_open]
    assert second.id != first.id and second.services == ("b3",)
    clock.advance(minutes=11)  # past the window: the cap no longer folds anything

    # a3 fires again within reopen_within of the first storm's resolution.
    await _storm(alerts, ["a3"], severity="warning", starts_at="2026-12-05T05:00:00Z")
    rows = await alerts.alert_rows()
    assert (rows[-1]["outcome"], rows[-1]["incident_id"]) == ("stormed", second.id)
    storms = [i for i in await alerts.incidents() if i.title == TITLE]
    assert {i.id: i.is_open for i in storms} == {first.id: False, second.id: True}
    joined = await alerts.harness.services.incidents.get(second.id)
    assert joined.services == ("b3", "a3")
    [moved] = [
        e.text
        for e in await alerts.harness.services.incidents.timeline(first.id)
        if e.kind == "alerts_moved"
    ]
    assert second.id in moved and "another storm incident is open" in moved
    [line] = [
        e.text
        for e in await alerts.harness.services.incidents.timeline(second.id)
        if e.kind == "alerts_stormed" and "a3" in e.text
    ]
    assert f"{first.id}, an earlier storm incident, firing again while this one is open" in line
    assert await _pages(alerts) == Counter({i.id: 1 for i in await alerts.incidents()})
    # a3's next alert joins where it went; so does a4's re-fire (the first storm's too).
    await _storm(alerts, ["a3", "a4"], severity="warning", starts_at="2026-12-05T06:00:00Z")
    rows = await alerts.alert_rows()
    assert {(r["service"], r["incident_id"]) for r in rows[-2:]} == {
        ("a3", second.id),
        ("a4", second.id),
    }

    # A person may reopen the first storm all the same: the services still folded into it
    # go to it, a new service past the cap to the newest declared storm incident.
    await alerts.harness.services.incidents.reopen(first.id, Actor("U0ALICE"), reason="look")
    await _storm(alerts, ["a5", "c1", "c2", "c3"], severity="warning", n="2")
    decided = await _decided(alerts)
    assert decided["a5"] == ("attached", first.id)
    assert [decided[s][0] for s in ("c1", "c2", "c3")] == ["declared", "declared", "stormed"]
    assert decided["c3"][1] == second.id
