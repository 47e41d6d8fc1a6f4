"""Two `scripts/demo` sessions in a row on one database: what the second one puts back of
the first (bot.console.earlier). Each test reproduces a gap found in the second session."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.clock import FakeClock
from bot.incidents import storage
from bot.incidents.service import incident_id
from bot.models import Incident, Severity, Status
from bot.store import Store
from tests.console_driver import Session
from tests.fake_kubernetes import FakeKubernetes, deployment
from tests.integration.test_console_remediate import _policy_file

DECLARE = "/incident declare P1 Checkout API returns 502"
ROOM = re.compile(r"(#inc-\d{8}-\d{3}-checkout-api-returns-502) created")


async def _declare(session: Session) -> tuple[str, Incident]:
    """Declare the P1 as README's demo does; its war room's name and the incident, once
    the room is set up (its card pinned)."""
    mark = session.type(DECLARE)
    out = await session.wait_for("pinned msg", since=mark)
    [room] = ROOM.findall(out)
    assert session.console.bot is not None
    [incident] = await session.console.bot.services.incidents.list()
    return room, incident


async def _resolved_after(store: Store, first: Incident, count: int) -> None:
    """`count` incidents declared after `first`, each with a war room, all resolved: a
    database used for a while, written as the bot stores incidents (their numbers taken as
    a declaration takes them), without announcing each one at Slack's pace."""
    day = first.id.split("-")[1]
    async with store.transaction() as tx:
        for n in range(1, count + 1):
            seq = await storage.next_sequence(tx, day)
            declared = first.declared_at + timedelta(minutes=n)
            incident = Incident(
                id=incident_id(day, seq),
                title=f"Later outage {n}",
                severity=Severity.P2,
                status=Status.RESOLVED,
                declared_by="U0YOU",
                declared_at=declared,
                updated_at=declared,
                resolved_at=declared + timedelta(seconds=30),
                resolved_by="U0YOU",
                channel_id=f"C0LATER{n:03d}",
            )
            await storage.insert(tx, incident, day=day, seq=seq)


async def test_an_open_incident_behind_fifty_newer_ones_comes_back(tmp_path: Path) -> None:
    """The second session read the newest 50 incidents, open or resolved: an open incident
    declared before 50 others was not put back (`:in` its war room: no such channel)."""
    async with Session(tmp_path) as first:
        room, incident = await _declare(first)
        assert first.console.bot is not None
        await _resolved_after(first.console.bot.services.store, incident, 52)
    async with Session(tmp_path) as second:
        mark = second.type(f":in {room}", ":channels")
        out = await second.wait_for("<- you are here", since=mark)
        assert "you are now in " + room in out, out
        mark = second.type("/incident ack")
        await second.wait_for("Acknowledged by", since=mark)
        out = await second.wait_for("edited", since=mark)
        assert "message_not_found" not in out and "Acknowledged: @U0YOU" in out, out
        # Every open incident comes back; resolved ones are capped, and the banner says so.
        banner = second.out.getvalue()[:mark]
        assert "51 war room(s) of an earlier session are back" in banner, banner
        assert "2 older resolved incidents not put back" in banner, banner
        assert "/incident list all lists every incident" in banner, banner
        names = {c.name for c in second.console.double.state.channels.values()}
        assert room[1:] in names
        assert not any(n.endswith("-later-outage-2") for n in names)  # the oldest resolved
        assert any(n.endswith("-later-outage-3") for n in names)


async def test_people_in_a_war_room_of_an_earlier_session_are_no_newcomers_there(
    tmp_path: Path,
) -> None:
    """The war room came back with the declarer and role holders only: the on-call, invited
    as it opened, joined it again in the next session as a newcomer, and got its catch-up;
    so would someone who had joined late (and had theirs) in the first session."""
    clock = FakeClock(datetime.now(UTC))
    async with Session(tmp_path, clock=clock) as first:
        room, incident = await _declare(first)
        clock.advance(minutes=5)  # whoever joins now comes late
        mark = first.type(":as U0LATE", f":in {room}")
        await first.wait_for("Catch-up on", since=mark)
    clock.advance(minutes=5)
    async with Session(tmp_path, clock=clock) as second:
        mark = second.type(":as U0ONCALL", f":in {room}", ":channels")
        out = await second.wait_for("<- you are here", since=mark)
        assert "you joined" not in out, out  # no member_joined_channel: no catch-up either
        [listed] = [line for line in out.splitlines() if line.startswith(room + " (")]
        assert "@U0YOU, @U0ONCALL, @U0LATE" in listed, listed
        assert second.console.bot is not None
        catchups = [
            entry.actor
            async for entry in second.console.bot.services.audit.entries(incident_id=incident.id)
            if entry.action == "incident.catchup"
        ]
        assert catchups == ["U0LATE"], catchups  # the one of the first session, no other


async def test_a_restored_card_shows_how_far_the_pages_have_gone(tmp_path: Path) -> None:
    """The cards came back drawn without their escalation: no Escalation line (nor the level
    its Escalate button carries) until the incident's next change redrew them."""
    async with Session(tmp_path) as first:
        room, _ = await _declare(first)
        out = first.out.getvalue()
        assert out.count("Escalation: Level 1 of 2 paged") == 2, out  # announcement and room
    async with Session(tmp_path) as second:
        mark = second.type(f":history {room}", ":history #incidents", ":channels")
        out = await second.wait_for("<- you are here", since=mark)
        assert out.count("Escalation: Level 1 of 2 paged") == 2, out


async def _request_scale(session: Session) -> None:
    """Alice asks to scale checkout from 3 to 6 replicas (in #general): posted, waiting."""
    mark = session.type(":as U0ALICE", "/remediate kubernetes.scale checkout replicas=6")
    await session.wait_for("from 3 to 6 replicas", since=mark)
    await session.wait_for("Approve", since=mark)


async def test_a_request_of_an_earlier_session_can_be_approved_in_the_next(
    tmp_path: Path, fake_kubernetes: FakeKubernetes
) -> None:
    """Its message was gone with the first session's workspace: no Approve to press, and
    asking again was refused ("request #1 ... is still waiting; approve or deny that one")."""
    fake_kubernetes.state.add(deployment("checkout", namespace="shop", replicas=3))
    policy = _policy_file(tmp_path)
    async with Session(tmp_path, policy_path=policy) as first:
        await _request_scale(first)
    async with Session(tmp_path, policy_path=policy) as second:
        banner = second.out.getvalue()
        assert "1 remediation request of an earlier session still waits for approval" in banner
        [approve] = re.findall(r"\[(\d+)\] Approve", banner)
        assert "REMEDIATION #1: ⏳ WAITING FOR APPROVAL" in banner, banner
        mark = second.type(":as U0BOB", approve)
        await second.wait_for("Approve this change?", since=mark)
        second.type("y")
        await second.wait_for("Succeeded", since=mark)
        out = await second.wait_for("#general · chatops-bot · msg 1 · edited", since=mark)
        assert "message_not_found" not in out, out
    assert fake_kubernetes.state.deployments[("shop", "checkout")]["spec"]["replicas"] == 6


async def test_a_request_that_expired_between_sessions_is_said_to_have_expired(
    tmp_path: Path, fake_kubernetes: FakeKubernetes
) -> None:
    """Its 15 minutes ran out while no console ran: the next session said nothing of it."""
    fake_kubernetes.state.add(deployment("checkout", namespace="shop", replicas=3))
    policy = _policy_file(tmp_path)
    async with Session(tmp_path, policy_path=policy) as first:
        await _request_scale(first)
        assert first.console.bot is not None
        [request] = await first.console.bot.services.remediation_records.requests_to_show()
    later = FakeClock(request.request.expires_at + timedelta(minutes=5))
    async with Session(tmp_path, policy_path=policy, clock=later) as second:
        banner = second.out.getvalue()
        expected = (
            "Remediation #1 (kubernetes.scale on checkout, requested by @U0ALICE) expired "
            f"unapproved at {request.request.expires_at:%Y-%m-%d %H:%M} UTC: its 15 min for "
            "approval ran out while no console was running. Request it again"
        )
        assert expected in banner, banner
        assert "still wait" not in banner, banner
        # Its message is back, and the expiry, fired as the bot starts, edits it.
        out = await second.wait_for("REMEDIATION #1: ⌛ EXPIRED")
        assert "message_not_found" not in out, out
        assert "Approve" not in out.split("REMEDIATION #1: ⌛ EXPIRED")[-1], out
