"""Block Kit builders. Each returns plain dicts that respect Slack's limits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.models import Incident, IncidentPage, Severity, TimelineEvent
from bot.notify import EscalationShown
from bot.slack import escalation_text, list_text
from bot.slack import templates as t
from bot.slack.diagnosis_blocks import DIAGNOSE_ACTION
from bot.slack.escape import clip, clip_mrkdwn

Block = dict[str, Any]

HEADER_MAX = 150
SECTION_MAX = 3000
FIELD_MAX = 2000
BUTTON_TEXT_MAX = 75
MESSAGE_BLOCKS_MAX = 50
MODAL_TITLE_MAX = 24

# Buttons on incident cards; each carries the incident ID as its value (Escalate: with the
# escalation level and the severity the card showed, see escalate_value).

ACK_ACTION = "incident_ack"
UPDATE_ACTION = "incident_post_update"
ESCALATE_ACTION = "incident_escalate"
RESOLVE_ACTION = "incident_resolve"
RETRY_WAR_ROOM_ACTION = "incident_retry_war_room"
CARD_ACTIONS_BLOCK = "incident_actions"


def escalate_value(incident_id: str, level: int, severity: Severity) -> str:
    """The Escalate button's value: the incident, and the level and severity its card
    showed, so that of two people pressing at once only one pages the next level, and a
    card from before a severity change does not page the new severity's people."""
    return f"{incident_id}:{level}:{severity.value}"


def escalate_value_parts(value: str) -> tuple[str, int | None, Severity | None]:
    """The incident ID, level and severity an Escalate button carries; no severity from a
    card rendered before buttons carried one (`INC-...:1`), nor a level before that (the
    value is the ID alone)."""
    severity: Severity | None = None
    head, sep, last = value.rpartition(":")
    if sep and last in Severity.__members__:
        value, severity = head, Severity(last)
    incident_id, sep, level = value.rpartition(":")
    if sep and level.isascii() and level.isdigit() and len(level) <= 3:
        return incident_id, int(level), severity
    return value, None, None


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, HEADER_MAX)}}


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip_mrkdwn(text, SECTION_MAX)}}


def fields(pairs: list[tuple[str, str]]) -> Block:
    # Slack allows at most 10 fields a section; callers pass fewer.
    return {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": clip_mrkdwn(f"*{label}*\n{value}", FIELD_MAX)}
            for label, value in pairs[:10]
        ],
    }


def context(*texts: str) -> Block:
    return {
        "type": "context",
        "elements": [
            {"type": "mrkdwn", "text": clip_mrkdwn(text, SECTION_MAX)} for text in texts[:10]
        ],
    }


def divider() -> Block:
    return {"type": "divider"}


def _template_fields(incident: Incident) -> list[tuple[str, str]]:
    """The communication template's fields, as the update and the card both show them."""
    return [
        ("Status", incident.status.label),
        ("Severity", t.severity_label(incident.severity)),
        ("Impact", t.said(incident.impact) or "Being assessed"),
        ("ETA", t.eta(incident)),
        ("Next Update", t.next_update(incident)),
        ("Contact", t.contact(incident)),
    ]


def _current_status(incident: Incident) -> Block:
    return section(
        "*Current Status*\n"
        + (
            t.said(incident.current_status)
            or f"Declared by {t.user(incident.declared_by)}; investigating."
        )
    )


def incident_update(incident: Incident, *, headline: str = "Incident Update") -> list[Block]:
    """The communication template: status, severity, impact, ETA, current status, next, contact."""
    return [
        header(f"{t.drill_mark(incident)}{headline}: {incident.title}"),
        fields(_template_fields(incident)),
        _current_status(incident),
        context(
            f"*{incident.id}* · declared by {t.user(incident.declared_by)} "
            f"{t.slack_date(incident.declared_at)}"
        ),
    ]


# -- incident cards -----------------------------------------------------------------------


def plain(text: str, limit: int = SECTION_MAX) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit), "emoji": True}


def button(
    text: str,
    action_id: str,
    value: str,
    *,
    style: str | None = None,
    confirm: dict[str, Any] | None = None,
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "text": plain(text, BUTTON_TEXT_MAX),
        "action_id": action_id,
        "value": value,
    }
    if style:
        element["style"] = style
    if confirm:
        element["confirm"] = confirm
    return element


def confirm_dialog(title: str, text: str, yes: str, *, danger: bool = False) -> dict[str, Any]:
    dialog: dict[str, Any] = {
        "title": plain(title, 100),
        "text": plain(text, 300),
        "confirm": plain(yes, 30),
        "deny": plain("Cancel", 30),
    }
    if danger:
        dialog["style"] = "danger"
    return dialog


def card_buttons(
    incident: Incident, *, retry_war_room: bool = False, escalation: EscalationShown | None = None
) -> Block | None:
    """Acknowledge (until someone did), Post update, Escalate, Resolve: while it is open.

    With `escalation` known, Escalate carries the level paged so far, and is left out once
    every level has been paged (there is nobody further to page)."""
    if not incident.is_open:
        return None
    elements = []
    if incident.acknowledged_at is None:
        elements.append(button("Acknowledge", ACK_ACTION, incident.id, style="primary"))
    elements.append(button("Post update", UPDATE_ACTION, incident.id))
    if escalation is None or escalation.level < escalation.levels:
        value = (
            incident.id
            if escalation is None
            else escalate_value(incident.id, escalation.level, incident.severity)
        )
        confirm = t.escalate_confirm_text(incident, escalation)
        elements.append(
            button(
                "Escalate",
                ESCALATE_ACTION,
                value,
                confirm=confirm_dialog("Escalate?", confirm, "Page now"),
            )
        )
    elements.append(
        button(
            "Resolve",
            RESOLVE_ACTION,
            incident.id,
            style="danger",
            confirm=confirm_dialog(
                "Resolve this incident?", t.resolve_confirm_text(incident), "Resolve", danger=True
            ),
        )
    )
    if retry_war_room:
        elements.append(button("Retry war room", RETRY_WAR_ROOM_ACTION, incident.id))
    if incident.services:  # read-only checks of the affected services (bot.diagnostics)
        elements.append(button("Diagnose", DIAGNOSE_ACTION, incident.id))
    return {"type": "actions", "block_id": CARD_ACTIONS_BLOCK, "elements": elements}


def incident_card(
    incident: Incident, *, retry_war_room: bool = False, escalation: EscalationShown | None = None
) -> list[Block]:
    """The incident as it is now: the template's fields, roles and the buttons; with
    `escalation`, how far the pages have gone (the Escalate button carries its level).

    Used for the announcement and the war room's pinned summary; both are edited in place
    (chat.update) after every change, which notifies nobody, so mentions here are safe.
    """
    cards: list[Block] = [
        header(f"{t.drill_mark(incident)}{incident.id}: {incident.title}"),
        fields(
            [
                *_template_fields(incident),
                ("Commander", t.user(incident.commander)),
                ("Acknowledged", t.acknowledged(incident)),
                *t.escalation_field(escalation),
            ]
        ),
        _current_status(incident),
    ]
    if page := escalation_text.announced_page_text(incident):
        cards.append(section(page))
    details = [f"Declared by {t.user(incident.declared_by)} {t.slack_date(incident.declared_at)}"]
    if incident.resolved_at is not None:
        details.append(
            f"resolved by {t.user(incident.resolved_by)} {t.slack_date(incident.resolved_at)}"
        )
    if incident.services:
        details.append("services: " + t.said(", ".join(incident.services)))
    context_lines = [" · ".join(details)]
    if roles := t.roles_line(incident):
        context_lines.append(roles)
    cards.append(context(*context_lines))
    buttons = card_buttons(incident, retry_war_room=retry_war_room, escalation=escalation)
    if buttons is not None:
        cards.append(buttons)
    return cards


def incident_show(
    incident: Incident, *, war_room_missing: bool, escalation: EscalationShown | None = None
) -> list[Block]:
    """`/incident show`: the card, and a Retry button when an open incident lacks its war
    room."""
    missing = war_room_missing and incident.is_open
    cards = incident_card(incident, retry_war_room=missing, escalation=escalation)
    if missing:
        cards.insert(len(cards) - 1, section(t.war_room_missing(incident)))  # above the buttons
    return cards


def _chunked_sections(lines: Sequence[str], room: int) -> tuple[list[Block], int]:
    """Lines packed into sections of at most 3,000 characters, at most `room` sections;
    returns the sections and how many lines did not fit."""
    sections: list[Block] = []
    current = ""
    used = 0
    for line in lines:
        line = clip_mrkdwn(line, SECTION_MAX)
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) <= SECTION_MAX:
            current = candidate
            used += 1
            continue
        if len(sections) + 1 >= room:
            break
        sections.append(section(current))
        current = line
        used += 1
    if current:
        sections.append(section(current))
    return sections, len(lines) - used


def incident_list(page: IncidentPage) -> list[Block]:
    """One page of incidents; a last line says how many more there are and how to see them."""
    blocks: list[Block] = [section(f"*{list_text.list_title(page)}*")]
    more = list_text.list_more(page)
    if page.incidents:
        room = MESSAGE_BLOCKS_MAX - 1 - (1 if more else 0)
        sections, _ = _chunked_sections([list_text.list_line(i) for i in page.incidents], room)
        blocks += sections
    if more:
        blocks.append(context(more))
    return blocks


def timeline(incident: Incident, events: Sequence[TimelineEvent]) -> list[Block]:
    """The newest entries that fit in one message, oldest first; a note of what was cut."""
    lines = [list_text.timeline_line(e) for e in events]
    room = MESSAGE_BLOCKS_MAX - 2  # the header and the note of what was cut
    # Count what fits from the newest backwards, so the latest events are always shown;
    # greedy packing needs as many sections either way round.
    _, hidden = _chunked_sections(list(reversed(lines)), room)
    sections, _ = _chunked_sections(lines[hidden:], room)
    blocks: list[Block] = [header(list_text.timeline_title(incident, len(events)))]
    if hidden:
        blocks.append(context(list_text.timeline_cut(hidden)))
    return blocks + sections


def page_message(incident: Incident, text: str) -> list[Block]:
    """An escalation page (in the channel or by DM): its text, and Acknowledge while it counts."""
    page: list[Block] = [section(text)]
    if incident.is_open and incident.acknowledged_at is None:
        ack = button("Acknowledge", ACK_ACTION, incident.id, style="primary")
        page.append({"type": "actions", "block_id": "page_actions", "elements": [ack]})
    return page
