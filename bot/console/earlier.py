"""Incidents of earlier console sessions, put back into this session's pretend workspace.

The console's database outlives a session (each piped `scripts/demo` is one); the Slack
double lives in the process. Without this, an incident declared in an earlier session has a
war room this workspace never heard of: `:in` cannot find it, its card's edits fail with
`message_not_found`, and its notices land in a channel shown by its ID. From where the store
says things stand (bot.incidents.standing):

- each missing war room is recreated under its name, with the people who were in it (those
  invited, the role holders, those caught up: none of them is a newcomer owed a catch-up);
- each card the bot keeps up to date, as the incident stands now with its escalation line
  (pinned in a war room); every open incident's, and the newest resolved ones'.

Nothing else of the earlier session's messages was kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.console.workspace import Channel, SlackDouble
from bot.incidents.naming import war_room_name
from bot.incidents.standing import Standing, StandingIncident
from bot.slack import blocks

Posted = tuple[Channel, dict[str, Any]]


@dataclass
class Restored:
    """What was put back: `cards` (there, not news), and lines for the banner."""

    cards: list[Posted] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def restore(double: SlackDouble, standing: Standing, announce_channel: str) -> Restored:
    """Put back the war rooms and cards the double lacks."""
    restored = Restored(cards=restore_channels(double, standing.incidents, announce_channel))
    if standing.resolved_left_out:
        count = standing.resolved_left_out
        restored.notes.append(
            f"{count} older resolved incident{'s' if count != 1 else ''} not put back: "
            "/incident list all lists every incident, /incident show INC-... shows one."
        )
    return restored


def restore_channels(
    double: SlackDouble, incidents: Iterable[StandingIncident], announce_channel: str
) -> list[Posted]:
    """Recreate the war rooms and cards of `incidents` the double lacks; returns the cards."""
    restored: list[Posted] = []
    for standing in sorted(incidents, key=lambda s: s.incident.declared_at):
        incident = standing.incident
        room = incident.channel_id
        if room and room != announce_channel and double.channel(room) is None:
            double.add_channel(
                room,
                war_room_name(incident.id, incident.title, drill=incident.drill),
                members=list(standing.members),
                creator=double.state.bot_user_id,
            )
            if incident.summary_ts:
                card = _card(double, room, incident.summary_ts, standing)
                if card is not None:
                    channel = double.channel(room)
                    assert channel is not None
                    channel.pinned.append(incident.summary_ts)
                    restored.append(card)
        if incident.announce_ts:
            card = _card(double, announce_channel, incident.announce_ts, standing)
            if card is not None:
                restored.append(card)
    return restored


def _card(
    double: SlackDouble, channel_id: str, ts: str, standing: StandingIncident
) -> Posted | None:
    """The incident's card at its original `ts` in `channel_id`, unless already there."""
    incident = standing.incident
    card = blocks.incident_card(incident, escalation=standing.escalation)
    return _put_back(double, channel_id, ts, f"{incident.id}: {incident.title}", card)


def _put_back(
    double: SlackDouble, channel_id: str, ts: str, text: str, message_blocks: list[Any]
) -> Posted | None:
    """A bot message at `ts` in `channel_id` (where its chat.update will look for it),
    unless the channel is missing or the message is there already."""
    channel = double.channel(channel_id)
    if channel is None or any(m.get("ts") == ts for m in channel.messages):
        return None
    message = double.state.messages.post_message(channel, {"text": text, "blocks": message_blocks})
    message["ts"] = ts
    channel.messages.sort(key=lambda m: float(m["ts"]))
    return channel, message
