"""Where the incidents stand (bot.incidents.standing: what the console's next session puts
back), read from SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot import audit
from bot.audit import AuditRecord
from bot.clock import FakeClock
from bot.escalation import storage as escalations
from bot.escalation.planner import EscalationState
from bot.incidents import storage
from bot.incidents.catchup_service import CatchupService
from bot.incidents.standing import StandingIncidents
from bot.models import Incident, Severity, Status
from bot.notify import EscalationShown
from bot.policy import load_policy
from bot.store import Store

NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


def _incident(seq: int, *, resolved: bool, room: bool = True) -> Incident:
    declared = NOW + timedelta(minutes=seq)
    return Incident(
        id=f"INC-20261127-{seq:03d}",
        title=f"Outage {seq}",
        severity=Severity.P1,
        status=Status.RESOLVED if resolved else Status.INVESTIGATING,
        declared_by="U0ALICE",
        declared_at=declared,
        updated_at=declared,
        resolved_at=declared + timedelta(seconds=30) if resolved else None,
        roles={"commander": "U0CMD"},
        channel_id=f"C0ROOM{seq:03d}" if room else None,
    )


async def test_every_open_incident_the_newest_resolved_with_escalation_and_members(
    store: Store,
) -> None:
    policy = load_policy(None)
    old_open = _incident(1, resolved=False)
    no_room = _incident(5, resolved=False, room=False)
    resolved = [_incident(seq, resolved=True) for seq in (2, 3, 4)]
    async with store.transaction() as tx:
        for incident in [old_open, no_room, *resolved]:
            await storage.insert(tx, incident, day="20261127", seq=int(incident.id[-3:]))
        await escalations.save_state(
            tx, EscalationState(old_open.id, 1, Severity.P1, NOW, level=1), NOW
        )
        await audit.append(
            tx,
            NOW,
            AuditRecord(
                actor="system",
                action="incident.invite",
                target=old_open.id,
                outcome="ok",
                args={"channel": old_open.channel_id, "invited": ["U0ALICE", "U0ONCALL"]},
                incident_id=old_open.id,
            ),
        )
    # U0LATE joins late and has the catch-up: they were in the room too.
    catchup = CatchupService(store=store, clock=FakeClock(NOW + timedelta(hours=1)))
    assert await catchup.for_joiner(old_open.channel_id or "", "U0LATE") is not None

    standing = await StandingIncidents(store=store, policy=policy).read(resolved_max=2)

    assert [s.incident.id for s in standing.incidents] == [
        old_open.id,
        "INC-20261127-003",
        "INC-20261127-004",
        no_room.id,
    ]
    assert standing.resolved_left_out == 1
    levels = len(policy.levels(Severity.P1))
    first, *others = standing.incidents
    assert first.escalation == EscalationShown(1, levels)
    assert first.members == ("U0ALICE", "U0CMD", "U0ONCALL", "U0LATE")
    assert others[0].escalation == EscalationShown(0, levels)  # never paged
    assert others[0].members == ("U0ALICE", "U0CMD")
    assert others[-1].members == ()  # no war room, nobody in one
