"""The open incidents naming a service (bot.incidents.storage.open_naming), however many are
open, on SQLite and PostgreSQL alike: what automatic recovery records on and alerts join."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.incidents import storage
from bot.incidents.queries import IncidentQueries
from bot.models import Incident, Severity, Status
from bot.store import Store

NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


def _incident(seq: int, *services: str, drill: bool = False, resolved: bool = False) -> Incident:
    declared = NOW + timedelta(seconds=seq)
    return Incident(
        id=f"INC-20261127-{seq:03d}",
        title=f"Outage {seq}",
        severity=Severity.P2,
        status=Status.RESOLVED if resolved else Status.INVESTIGATING,
        declared_by="U0ALICE",
        declared_at=declared,
        updated_at=declared,
        resolved_at=declared if resolved else None,
        services=services,
        drill=drill,
    )


async def test_found_past_the_newest_two_hundred_open_incidents(store: Store) -> None:
    """Recovery read the newest 50 open incidents, alerts the newest 200: with more open
    since, the service's incident was not found (recovery went on without it, an alert
    declared a second incident for the service)."""
    checkout = _incident(1, "Checkout", "cart")
    others = [_incident(seq, f"svc{seq}") for seq in range(2, 260)]
    async with store.transaction() as tx:
        for incident in [checkout, *others]:
            await storage.insert(tx, incident, day="20261127", seq=int(incident.id[-3:]))
        found = await storage.open_naming(tx, "checkout")
        assert [i.id for i in found] == [checkout.id]
        assert [i.id for i in await storage.open_naming(tx, "CART")] == [checkout.id]


async def test_only_open_real_incidents_that_name_it_exactly_newest_first(store: Store) -> None:
    incidents = [
        _incident(1, "pay_api"),
        _incident(2, "payxapi"),  # "_" is no wildcard
        _incident(3, "pay%api"),  # nor "%"
        _incident(4, "pay_api", drill=True),
        _incident(5, "pay_api", resolved=True),
        _incident(6, "pay_api-v2"),  # a longer name is another service
        _incident(7, "web", "PAY_API"),
        _incident(8, 'pa"y\\api'),
        _incident(9, "café"),
    ]
    async with store.transaction() as tx:
        for incident in incidents:
            await storage.insert(tx, incident, day="20261127", seq=int(incident.id[-3:]))
        ids = [i.id for i in await storage.open_naming(tx, "pay_api")]
        assert ids == ["INC-20261127-007", "INC-20261127-001"]
        assert [i.id for i in await storage.open_naming(tx, "pay%api")] == ["INC-20261127-003"]
        assert [i.id for i in await storage.open_naming(tx, 'pa"y\\api')] == ["INC-20261127-008"]
        assert [i.id for i in await storage.open_naming(tx, "CAFÉ")] == ["INC-20261127-009"]
        assert await storage.open_naming(tx, "pay") == []


async def test_completion_reads_every_open_incident_and_the_newest_fifty(store: Store) -> None:
    """The console completed incident IDs from the newest 50 only: an open incident behind
    60 newer resolved ones could not be completed."""
    old_open = _incident(1, "checkout")
    resolved = [_incident(seq, f"svc{seq}", resolved=True) for seq in range(2, 62)]
    async with store.transaction() as tx:
        for incident in [old_open, *resolved]:
            await storage.insert(tx, incident, day="20261127", seq=int(incident.id[-3:]))
    ids = [i.id for i in await IncidentQueries(store=store).open_and_newest()]
    assert old_open.id in ids and len(ids) == 51
    assert {i.id for i in resolved[-50:]} <= set(ids)
