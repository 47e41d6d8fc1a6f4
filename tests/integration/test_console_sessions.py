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
        mark = second.type(f":in {room}", "/incident ack")
        out = await second.wait_for(">", since=mark)
        assert "you are now in " + room in out, out
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
        mark = second.type(f":history {room}", ":history #incidents")
        out = await second.wait_for("#incidents · chatops-bot", since=mark)
        out = await second.wait_for("[4] Resolve", since=mark)
        assert out.count("Escalation: Level 1 of 2 paged") == 2, out
