"""Block Kit builders. Each returns plain dicts that respect Slack's limits."""

from __future__ import annotations

from typing import Any

from bot.models import Incident
from bot.slack import templates as t

Block = dict[str, Any]

HEADER_MAX = 150
SECTION_MAX = 3000
FIELD_MAX = 2000
BUTTON_TEXT_MAX = 75


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, HEADER_MAX)}}


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_MAX)}}


def fields(pairs: list[tuple[str, str]]) -> Block:
    # Slack allows at most 10 fields a section; callers pass fewer.
    return {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": clip(f"*{label}*\n{value}", FIELD_MAX)}
            for label, value in pairs[:10]
        ],
    }


def context(*texts: str) -> Block:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": clip(text, SECTION_MAX)} for text in texts[:10]],
    }


def divider() -> Block:
    return {"type": "divider"}


def incident_update(incident: Incident, *, headline: str = "Incident Update") -> list[Block]:
    """The communication template: status, severity, impact, ETA, current status, next, contact."""
    return [
        header(f"{headline}: {incident.title}"),
        fields(
            [
                ("Status", incident.status.label),
                ("Severity", t.severity_label(incident.severity)),
                ("Impact", incident.impact or "Being assessed"),
                ("ETA", incident.eta or "Unknown yet"),
                ("Next Update", t.next_update(incident)),
                ("Contact", t.contact(incident)),
            ]
        ),
        section(
            "*Current Status*\n"
            + (
                incident.current_status
                or f"Declared by {t.user(incident.declared_by)}; investigating."
            )
        ),
        context(
            f"*{incident.id}* · declared by {t.user(incident.declared_by)} "
            f"{t.slack_date(incident.declared_at)}"
        ),
    ]
