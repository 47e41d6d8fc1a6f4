"""Incidents of earlier console sessions, put back into this session's pretend workspace.

The console's database outlives a session (each piped `scripts/demo` is one); the Slack
double lives in the process. Without this, an incident declared in an earlier session has a
war room this workspace never heard of: `:in` cannot find it, its card's edits fail with
`message_not_found`, and its notices land in a channel shown by its ID. Each missing channel
is recreated under its name, with the card the bot keeps up to date (as the incident stands
now, pinned in a war room); nothing else of the earlier session's messages was kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bot.console.workspace import Channel, SlackDouble
from bot.incidents.naming import war_room_name
from bot.models import Incident
from bot.slack import blocks


def restore_channels(
    double: SlackDouble, incidents: Iterable[Incident], announce_channel: str
) -> list[tuple[Channel, dict[str, Any]]]:
    """Recreate the war rooms and cards of `incidents` the double lacks; returns the cards."""
    restored: list[tuple[Channel, dict[str, Any]]] = []
    for incident in sorted(incidents, key=lambda i: i.declared_at):
        room = incident.channel_id
        if room and room != announce_channel and double.channel(room) is None:
            people = [p for p in (incident.declarer, *incident.roles.values()) if p]
            double.add_channel(
                room,
                war_room_name(incident.id, incident.title, drill=incident.drill),
                members=list(dict.fromkeys(people)),
                creator=double.state.bot_user_id,
            )
            if incident.summary_ts:
                card = _card(double, room, incident.summary_ts, incident)
                if card is not None:
                    channel = double.channel(room)
                    assert channel is not None
                    channel.pinned.append(incident.summary_ts)
                    restored.append(card)
        if incident.announce_ts:
            card = _card(double, announce_channel, incident.announce_ts, incident)
            if card is not None:
                restored.append(card)
    return restored


def _card(
    double: SlackDouble, channel_id: str, ts: str, incident: Incident
) -> tuple[Channel, dict[str, Any]] | None:
    """The incident's card at its original `ts` in `channel_id`, unless already there."""
    channel = double.channel(channel_id)
    if channel is None or any(m.get("ts") == ts for m in channel.messages):
        return None
    message = double.state.messages.post_message(
        channel,
        {"text": f"{incident.id}: {incident.title}", "blocks": blocks.incident_card(incident)},
    )
    message["ts"] = ts  # where the bot's chat.update will look for it
    channel.messages.sort(key=lambda m: float(m["ts"]))
    return channel, message
