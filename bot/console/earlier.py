"""Incidents of earlier console sessions, put back into this session's pretend workspace.

The console's database outlives a session (each piped `scripts/demo` is one); the Slack
double lives in the process. Without this, an incident declared in an earlier session has a
war room this workspace never heard of: `:in` cannot find it, its card's edits fail with
`message_not_found`, and its notices land in a channel shown by its ID. From where the store
says things stand (bot.incidents.standing, bot.remediation.history):

- each missing war room is recreated under its name, with the people who were in it (those
  invited, the role holders, those caught up: none of them is a newcomer owed a catch-up);
- each card the bot keeps up to date, as the incident stands now with its escalation line
  (pinned in a war room); every open incident's, and the newest resolved ones';
- each remediation request message still waiting for approval, so Approve and Deny work
  again; one whose time ran out while no console ran is put back too (the bot's start
  expires it and edits it: that edit needs the message) and the banner says why it expired.

Nothing else of the earlier session's messages was kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.console.workspace import Channel, SlackDouble
from bot.durations import humanize_seconds
from bot.incidents.naming import war_room_name
from bot.incidents.standing import Standing, StandingIncident
from bot.remediation.history import RequestShown
from bot.slack import blocks
from bot.slack import remediation_blocks as request_views

Posted = tuple[Channel, dict[str, Any]]


@dataclass
class Restored:
    """What was put back: `cards` (there, not news), `waiting` (request messages to show,
    their buttons numbered), and lines for the banner."""

    cards: list[Posted] = field(default_factory=list)
    waiting: list[Posted] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def restore(
    double: SlackDouble,
    standing: Standing,
    requests: Sequence[RequestShown],
    announce_channel: str,
) -> Restored:
    """Put back the war rooms, cards and request messages the double lacks."""
    restored = Restored(cards=restore_channels(double, standing.incidents, announce_channel))
    if standing.resolved_left_out:
        count = standing.resolved_left_out
        restored.notes.append(
            f"{count} older resolved incident{'s' if count != 1 else ''} not put back: "
            "/incident list all lists every incident, /incident show INC-... shows one."
        )
    for shown in requests:
        posted = _request_message(double, shown)
        request = shown.request
        if not shown.expired:
            if posted is not None:
                restored.waiting.append(posted)
            else:
                restored.notes.append(
                    f"Remediation #{request.id} waits for approval until "
                    f"{_when(request.expires_at)}, but its message was in {request.channel_id},"
                    " which this session does not have: it cannot be approved here."
                )
            continue
        if posted is not None:
            restored.cards.append(posted)  # edited as the bot's start expires it
        restored.notes.append(_expired(shown))
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


def _request_message(double: SlackDouble, shown: RequestShown) -> Posted | None:
    """The request's message at its original `ts`, as the request stands now."""
    request = shown.request
    if request.channel_id is None or request.message_ts is None:
        return None
    return _put_back(
        double,
        request.channel_id,
        request.message_ts,
        request_views.request_text(request),
        request_views.request_blocks(request, shown.approvers),
    )


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


def _expired(shown: RequestShown) -> str:
    """Why a request of an earlier session can no longer be approved, said plainly."""
    request = shown.request
    window = humanize_seconds((request.expires_at - request.requested_at).total_seconds())
    return (
        f"Remediation #{request.id} ({request.action} on {request.service}, requested by "
        f"@{request.requested_by}) expired unapproved at {_when(request.expires_at)}: its "
        f"{window} for approval ran out while no console was running. Request it again if "
        "it is still needed."
    )


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
