"""What an incident change tells Slack: the outbox effect kinds, the usual effects of each
kind of change, and their payloads. Pure: no store, no clock.

The effects are queued with the change (`bot.incidents.changes`) and delivered by
`bot.incidents.flows` once it commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.incidents import storage
from bot.incidents.changes import Queued
from bot.models import Incident
from bot.policy import Policy

ANNOUNCE = "incident.announce"  # the incident card in the announcement channel
WAR_ROOM = "incident.war_room"  # create the war room (or find it), then queue its set-up
INVITE = "incident.invite"  # invite people into the war room
SUMMARY = "incident.summary"  # post (or edit) the summary card in the war room
PIN = "incident.pin"  # pin the summary card
POST_UPDATE = "incident.post_update"  # a status update in the communication template
NOTICE = "incident.notice"  # one line in the incident channel (ack, roles, notes)
REFRESH = "incident.refresh"  # edit the cards in place; the war-room topic when it changed

# What each kind of change tells Slack unless the caller names the effects itself.
EFFECTS_OF_CHANGE: dict[str, tuple[str, ...]] = {
    "acknowledged": (NOTICE, REFRESH),
    "updated": (POST_UPDATE, REFRESH),
    "resolved": (POST_UPDATE, REFRESH),
    "reopened": (POST_UPDATE, REFRESH),
    "severity_changed": (POST_UPDATE, REFRESH),
    "assigned": (INVITE, NOTICE, REFRESH),
    "noted": (NOTICE,),
    "war_room_requested": (WAR_ROOM,),
}


def incident_channel(incident: Incident, policy: Policy) -> str:
    """Where an incident's updates go: its war room, else the announcement channel."""
    return incident.channel_id or policy.announce_channel


def effects_for(kind: str, incident: Incident, policy: Policy) -> tuple[str, ...]:
    """The usual effects of a `kind` of change that left `incident` as it is."""
    effects = EFFECTS_OF_CHANGE.get(kind, ())
    # A severity that now calls for a war room (or a reopened incident whose war room
    # never opened) gets one.
    if (
        kind in ("severity_changed", "reopened")
        and incident.is_open
        and incident.channel_id is None
        and policy.has_war_room(incident.severity)
    ):
        effects = (WAR_ROOM, *effects)
    return effects


def queued(effects: Sequence[str], payload: dict[str, Any], after: Incident) -> list[Queued]:
    """The outbox entries for `effects`, each carrying `payload`."""
    entries: list[Queued] = []
    for effect in effects:
        if effect == POST_UPDATE:
            # An update shows the incident as it was at this change, however late it
            # is delivered; one effect per channel so a retry never posts twice.
            snapshot = payload | {"snapshot": storage.snapshot(after)}
            entries += [
                Queued(effect, snapshot | {"target": target}) for target in ("incident", "announce")
            ]
        else:
            entries.append(Queued(effect, payload))
    return entries
