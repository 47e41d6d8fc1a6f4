"""Where the incidents stand, for a front end that lost its copy of the workspace: the
console's pretend Slack lives one session, its database outlives it (bot.console.earlier
puts the war rooms back from this).

What is read, in one snapshot:
- every open incident, however old, and the newest `resolved_max` resolved ones (with how
  many resolved ones are left out): a war room still in use is never lost to a cap;
- each one's escalation as its card shows it (the highest level paged, of its severity's
  levels now), so a card drawn from this reads as the bot draws it after a change;
- who was in each war room: the declarer and role holders, everyone the bot invited
  (its `incident.invite` audit entries) and everyone given the catch-up on joining late.
  Someone who joined on their own early, and got no catch-up, left no trace: not listed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from bot.incidents import storage
from bot.models import Incident
from bot.notify import EscalationShown
from bot.policy import Policy
from bot.store import Store, Tx, among

RESOLVED_MAX = 50  # resolved incidents put back, the newest first
_IDS_PER_READ = 500  # incident IDs per `IN (...)`: inside SQLite's oldest limit of 999


@dataclass(frozen=True, slots=True)
class StandingIncident:
    """One incident as it stands: its card's escalation, and who was in its war room
    (empty without one), the declarer first."""

    incident: Incident
    escalation: EscalationShown
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Standing:
    """The incidents to show again, oldest first, and how many resolved ones were left out."""

    incidents: tuple[StandingIncident, ...]
    resolved_left_out: int


class StandingIncidents:
    """Reads where the incidents stand (the module docstring)."""

    def __init__(self, *, store: Store, policy: Policy) -> None:
        self.store = store
        self.policy = policy

    async def read(self, *, resolved_max: int = RESOLVED_MAX) -> Standing:
        """Every open incident and the newest `resolved_max` resolved ones, oldest first."""
        async with self.store.snapshot() as tx:
            opened = await storage.list_with_escalation_level(tx, resolved=False)
            resolved = await storage.list_with_escalation_level(
                tx, resolved=True, limit=resolved_max
            )
            every = await storage.count_incidents(tx, open_only=False)
            found = sorted([*opened, *resolved], key=lambda f: (f[0].declared_at, f[0].id))
            present = await _present(tx, [i.id for i, _ in found if i.channel_id])
        return Standing(
            tuple(self._standing(i, level, present.get(i.id, [])) for i, level in found),
            max(0, every - len(opened) - len(resolved)),
        )

    def _standing(self, incident: Incident, level: int, present: list[str]) -> StandingIncident:
        members: tuple[str, ...] = ()
        if incident.channel_id:
            known = [incident.declarer, *incident.roles.values(), *present]
            members = tuple(dict.fromkeys(m for m in known if m))
        levels = len(self.policy.levels(incident.severity))
        return StandingIncident(incident, EscalationShown(level, levels), members)


async def _present(tx: Tx, incident_ids: Sequence[str]) -> dict[str, list[str]]:
    """Who was invited into, or caught up on joining, each incident's war room, in order."""
    present: dict[str, list[str]] = {}
    for start in range(0, len(incident_ids), _IDS_PER_READ):
        within, params = among(tx, incident_ids[start : start + _IDS_PER_READ])
        invites = await tx.fetchall(
            "SELECT incident_id, args FROM audit_log"
            f" WHERE action = 'incident.invite' AND incident_id {within} ORDER BY seq",
            params,
        )
        for row in invites:
            invited = json.loads(row["args"]).get("invited") or []
            present.setdefault(row["incident_id"], []).extend(str(u) for u in invited)
        caught_up = await tx.fetchall(
            f"SELECT incident_id, user_id FROM catchup_sent WHERE incident_id {within}"
            " ORDER BY sent_at, user_id",
            params,
        )
        for row in caught_up:
            present.setdefault(row["incident_id"], []).append(str(row["user_id"]))
    return present
