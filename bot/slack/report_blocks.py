"""Wording and Block Kit for what comes after an incident: the report's message, the stats
message, the postmortem modal, action items and their reminders, similar past incidents."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.durations import humanize_seconds
from bot.models import Incident
from bot.reports.forms import ACTION_ROWS, TEXT_FIELDS, PostmortemInput, shown_digest
from bot.reports.models import (
    ActionItem,
    Figure,
    Postmortem,
    SeverityStats,
    SimilarIncident,
    Stats,
)
from bot.slack.blocks import (
    button,
    confirm_dialog,
    context,
    divider,
    header,
    plain,
    section,
)
from bot.slack.escape import clip, escape_mrkdwn
from bot.slack.modals import INPUT_ACTION
from bot.slack.templates import drill_mark, severity_label, slack_date, user

Block = dict[str, Any]
POSTMORTEM_VIEW = "incident_postmortem"
CLOSE_ITEM_ACTION = "action_item_close"
GIVEN_BACK_MAX = 39_000  # characters of one message's text; Slack refuses over 40,000
MAX_ITEMS_LISTED = 40  # keeps the list under Slack's 50 blocks a message


# -- the report -------------------------------------------------------------------------


def report_comment(incident: Incident, requested_by: str) -> str:
    state = "" if not incident.is_open else " (draft: the incident is still open)"
    return (
        f"{drill_mark(incident)}Post-incident report for *{incident.id}* "
        f"{escape_mrkdwn(clip(incident.title, 200))}{state}, shared by {user(requested_by)}."
    )


def refused_note(channel: str) -> str:
    """Before a file sent by direct message because `channel` would not take it."""
    return (
        f"I could not share this in <#{channel}>: I am not a member there (or it is "
        "archived), so here it is for you alone. Invite me there to share it in the channel.\n"
    )


def report_filename(incident: Incident) -> str:
    return f"{incident.id}-report.md"


def report_queued(incident: Incident, channel: str) -> str:
    draft = " It is still open, so the report says it is a draft." if incident.is_open else ""
    return f"The post-incident report of {incident.id} is being shared in <#{channel}>.{draft}"


def not_shared_text(incident_id: str | None, channel: str, error_code: str) -> str:
    """By direct message to who asked for a report or the statistics, when Slack refused
    the file for good where they asked (the bot is not in that channel, say)."""
    what = f"The post-incident report of *{incident_id}*" if incident_id else "The statistics"
    return (
        f":warning: {what} could not be shared in <#{channel}>: Slack said "
        f"`{escape_mrkdwn(error_code)}` (the bot is not in that channel, or may not post there). "
        "Invite the bot there (`/invite`) and ask again, or ask in a channel it is in."
    )


# -- statistics -------------------------------------------------------------------------


def _duration(value: float | None) -> str:
    return humanize_seconds(value) if value is not None else "—"


def figure(fig: Figure, empty: str = "—") -> str:
    if not fig.count:
        return empty
    return f"{_duration(fig.median)} median · {_duration(fig.p90)} p90 (n={fig.count})"


def mttr(row: SeverityStats) -> str:
    """MTTR, where incidents none of which is resolved say so: "—" read as nothing to show."""
    return figure(row.mttr, "none resolved yet" if row.incidents else "—")


def stats_text(stats: Stats) -> str:
    return (
        f"Incident statistics, last {stats.days} days: {stats.total} incident(s) "
        f"({stats.since:%Y-%m-%d} to {stats.until:%Y-%m-%d})"
    )


def stats_lines(stats: Stats) -> list[str]:
    """One line per severity: plain enough for the CLI and the console too."""
    lines = []
    for row in stats.by_severity:
        lines.append(
            f"{row.severity}: {row.incidents} incident(s) · MTTA {figure(row.mtta)} · "
            f"MTTR {mttr(row)} · MTTD {figure(row.mttd)} · "
            f"breaches: ack {row.ack_breaches}, resolve {row.resolve_breaches}"
        )
    return lines


def stats_blocks(stats: Stats, chart_held: str = "") -> list[Block]:
    """`/incident stats`' figures; `chart_held`: why no chart follows (the person's pace)."""
    chart = (
        f"No chart this time: {escape_mrkdwn(chart_held)}"
        if chart_held
        else "The chart follows as a file."
    )
    blocks: list[Block] = [header(f"Incidents, last {stats.days} days")]
    for row in stats.by_severity:
        blocks.append(
            section(
                f"*{severity_label(row.severity)}*: {row.incidents} incident(s)\n"
                f"MTTA {figure(row.mtta)}\nMTTR {mttr(row)}\nMTTD {figure(row.mttd)}\n"
                f"Target breaches: acknowledge {row.ack_breaches} · resolve "
                f"{row.resolve_breaches}"
            )
        )
    blocks.append(
        context(
            "MTTA and MTTR count from declaration; MTTD from the impact's start to its "
            f"detection, where the postmortem gave both. {chart}"
        )
    )
    return blocks


def stats_filename(stats: Stats) -> str:
    return f"incidents-{stats.until:%Y%m%d}-{stats.days}d.png"


def stats_comment(stats: Stats, requested_by: str) -> str:
    lines = "\n".join(f"• {line}" for line in stats_lines(stats))
    return (
        f"*{stats_text(stats)}*, for {user(requested_by)}\n{lines}\n"
        "Chart: incidents per week by severity, median MTTR beside."
    )


# -- postmortem modal -------------------------------------------------------------------


def _input(block_id: str, label: str, element: dict[str, Any], *, optional: bool = True) -> Block:
    return {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": plain(label, 2000),
        "element": {**element, "action_id": INPUT_ACTION},
    }


def _text(initial: str, *, multiline: bool = True, limit: int = 3000) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "multiline": multiline,
        "max_length": limit,
    }
    if initial:
        element["initial_value"] = initial[:limit]
    return element


def _moment(value: datetime | None) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "datetimepicker"}
    if value is not None:
        element["initial_date_time"] = int(value.timestamp())
    return element


_TEXT_LABELS = {
    "root_cause": "Root cause",
    "resolution": "Resolution",
    "prevention": "Prevention",
    "lessons": "Lessons learned",
    "affected_users": "Affected users",
    "data_impact": "Data impact",
}


def postmortem_modal(
    incident: Incident, postmortem: Postmortem, items: Sequence[ActionItem], *, origin: str | None
) -> Block:
    """The postmortem form, prefilled from what is recorded (and the resolution). Its notes
    carry a digest of what each field shows, so saving it changes only what was edited."""
    texts = {name: getattr(postmortem, name) for name in TEXT_FIELDS}
    limits = {name: 1000 if name in ("affected_users", "data_impact") else 3000 for name in texts}
    blocks: list[Block] = [
        section(f"*{incident.id}* {escape_mrkdwn(clip(incident.title, 200))}"),
        *(
            _input(name, label, _text(texts[name], limit=limits[name]))
            for name, label in _TEXT_LABELS.items()
        ),
        _input("started_at", "Impact started at", _moment(postmortem.started_at)),
        _input("detected_at", "First detected at", _moment(postmortem.detected_at)),
    ]
    shown = [shown_digest(texts[name][: limits[name]].strip()) for name in TEXT_FIELDS]
    shown.append(shown_digest(postmortem.started_at, postmortem.detected_at))
    open_items = [item for item in items if item.is_open]
    if open_items:
        listed = "\n".join(f"• #{i.id} {escape_mrkdwn(clip(i.text, 120))}" for i in open_items)
        blocks.append(section(clip(f"*Open action items*\n{listed}", 2900)))
    blocks.append(divider())
    blocks.append(context("New action items: each needs what, who and by when."))
    for row in range(ACTION_ROWS):
        blocks.append(
            _input(
                f"item_{row}_text", f"Action item {row + 1}", _text("", multiline=False, limit=500)
            )
        )
        blocks.append(_input(f"item_{row}_owner", "Owner", {"type": "users_select"}))
        blocks.append(_input(f"item_{row}_due", "Due", {"type": "datepicker"}))
    return {
        "type": "modal",
        "callback_id": POSTMORTEM_VIEW,
        "title": plain("Postmortem", 24),
        "submit": plain("Save", 24),
        "close": plain("Cancel", 24),
        "private_metadata": json.dumps(
            {"incident_id": incident.id, "channel": origin, "shown": ",".join(shown)}
        ),
        "blocks": blocks,
    }


def postmortem_values(view: dict[str, Any]) -> dict[str, Any]:
    """{block_id: raw value} from the submitted postmortem view."""
    values: dict[str, Any] = {}
    state = view.get("state")
    submitted = state.get("values") if isinstance(state, dict) else None
    # A state of the wrong shape gives no values (refused beside the fields), never an
    # exception before the ack that leaves the form spinning.
    for block_id, actions in submitted.items() if isinstance(submitted, dict) else ():
        element = actions.get(INPUT_ACTION) if isinstance(actions, dict) else None
        if not isinstance(element, dict):
            continue
        for key in ("value", "selected_user", "selected_date", "selected_date_time"):
            if key in element:
                values[block_id] = element[key]
                break
    return values


def postmortem_saved(incident_id: str, added: Sequence[ActionItem]) -> str:
    extra = (
        f" and {len(added)} action item(s), each reminded to its owner when due" if added else ""
    )
    return f"Postmortem of {incident_id} saved{extra}. `/incident report {incident_id}` shares it."


def postmortem_given_back(incident_id: str, why: str, form: PostmortemInput) -> list[str]:
    """The postmortem form's text, back to whoever typed it when it could not be saved
    (`why`: the answer saying what went wrong), so nothing typed is lost: as many messages
    as Slack's 40,000 characters a message need (escaped, a full form can be 70,000)."""
    lines = [
        f"Your postmortem of {incident_id}: {why}",
        "Here is what you typed, so none of it is lost (paste it into"
        f" `/incident postmortem {incident_id}`):",
    ]
    for name, label in _TEXT_LABELS.items():
        value = getattr(form, name)
        if value:
            lines.append(f"\n*{label}*\n{escape_mrkdwn(value)}")
    for name, label in (("started_at", "Impact started at"), ("detected_at", "First detected at")):
        moment = getattr(form, name)
        if moment is not None:
            lines.append(f"\n*{label}* {slack_date(moment)}")
    for item in form.action_items:
        lines.append(
            f"\n*Action item* {escape_mrkdwn(item.text)}, owner {user(item.owner)},"
            f" due {slack_date(item.due_at)}"
        )
    messages = [lines[0]]
    for line in lines[1:]:  # each under 16,000 characters (a 3,000-character field escaped)
        if len(messages[-1]) + 1 + len(line) > GIVEN_BACK_MAX:
            messages.append(line.lstrip("\n"))
        else:
            messages[-1] += "\n" + line
    return messages


# -- action items -----------------------------------------------------------------------


def item_line(item: ActionItem, now: datetime, *, incident: bool = False) -> str:
    """An item in two lines; `incident`: naming its incident, where nothing else does (the
    App Home lists items of every incident, and a closed reminder lost its first line)."""
    if item.closed_at is not None:
        state = f"closed by {user(item.closed_by)}"
    elif item.due_at < now:
        state = ":warning: overdue"
    else:
        state = "open"
    return (
        f"*#{item.id}* {escape_mrkdwn(clip(item.text, 300))}\n"
        f"{f'{item.incident_id} · ' if incident else ''}"
        f"{user(item.owner)} · due {slack_date(item.due_at)} · {state}"
    )


def close_button(item: ActionItem) -> dict[str, Any]:
    return button(
        "Close",
        CLOSE_ITEM_ACTION,
        str(item.id),
        confirm=confirm_dialog("Close action item?", clip(item.text, 250), "Close"),
    )


def item_block(item: ActionItem, now: datetime, *, incident: bool = False) -> Block:
    block = section(item_line(item, now, incident=incident))
    if item.is_open:
        block["accessory"] = close_button(item)
    return block


def action_items_text(incident: Incident, items: Sequence[ActionItem]) -> str:
    still = sum(1 for i in items if i.is_open)
    return f"{incident.id}: {len(items)} action item(s), {still} open"


def action_items_blocks(
    incident: Incident, items: Sequence[ActionItem], now: datetime
) -> list[Block]:
    blocks: list[Block] = [section(f"*Action items of {incident.id}*")]
    if not items:
        blocks.append(section("None yet. `/incident postmortem` records them."))
    # Open ones first: past the cut, an open item had no Close button anywhere.
    listed = sorted(items, key=lambda item: not item.is_open)[:MAX_ITEMS_LISTED]
    blocks += [item_block(item, now) for item in listed]
    if len(items) > MAX_ITEMS_LISTED:
        blocks.append(context(f"…and {len(items) - MAX_ITEMS_LISTED} more in the report."))
    return blocks


def item_closed(item: ActionItem, changed: bool) -> str:
    if not changed:
        return f"Action item #{item.id} was already closed."
    return f"Action item #{item.id} closed: {escape_mrkdwn(clip(item.text, 200))}"


def reminder_text(item: ActionItem, incident: Incident, *, overdue: bool) -> str:
    state = "is overdue" if overdue else "is due"
    return (
        f"Action item #{item.id} from {incident.id} {state} ({slack_date(item.due_at)}): "
        f"{escape_mrkdwn(clip(item.text, 500))}"
    )


def closed_item_blocks(item: ActionItem, now: datetime) -> list[Block]:
    """A reminder's message once its item is closed: who closed it, no button."""
    return [item_block(item, now, incident=True), context("Closed: no more reminders.")]


def reminder_blocks(item: ActionItem, incident: Incident, *, overdue: bool) -> list[Block]:
    block = section(reminder_text(item, incident, overdue=overdue))
    block["accessory"] = close_button(item)
    return [block, context("Reminded until it is closed.")]


# -- similar incidents ------------------------------------------------------------------


def similar_blocks(found: Sequence[SimilarIncident]) -> list[Block]:
    """Up to three earlier incidents like this one, with what fixed them."""
    if not found:
        return []
    lines = []
    for match in found[:3]:
        past = match.incident
        cause = escape_mrkdwn(clip(match.root_cause, 300)) or "_no root cause recorded_"
        fix = escape_mrkdwn(clip(match.resolution, 300)) or "_no resolution recorded_"
        lines.append(
            f"*{past.id}* ({past.severity}) {escape_mrkdwn(clip(past.title, 150))}\n"
            f"Root cause: {cause}\nResolution: {fix}"
        )
    return [section("*Similar past incidents*"), *[section(line) for line in lines]]


def similar_text(found: Sequence[SimilarIncident]) -> str:
    return "Similar past incidents: " + ", ".join(m.incident.id for m in found)
