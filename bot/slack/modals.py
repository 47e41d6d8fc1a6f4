"""Modals in Slack: the declaration and status-update forms, and the loading and message
views shown while a form opens or when it cannot. Each input's value is read back by its
block_id (the field name) and INPUT_ACTION."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bot.incidents.forms import update_form_shown
from bot.incidents.lifecycle import ORDER
from bot.incidents.schemas import IMPACT_MAX, MESSAGE_MAX, PUBLISH_OPTION, TITLE_MAX
from bot.models import Incident
from bot.slack import templates as t
from bot.slack.blocks import MODAL_TITLE_MAX, Block, plain, section
from bot.slack.escape import escape_mrkdwn

# Modals: callback IDs; each input's block_id is its field name, its action_id INPUT_ACTION.
DECLARE_VIEW = "incident_declare"
UPDATE_VIEW = "incident_update"
INPUT_ACTION = "value"
OPTIONS_MAX = 100  # options in one select menu, and option groups in one (Slack's limits)


def _input(
    field: str,
    label: str,
    element: dict[str, Any],
    *,
    optional: bool = False,
    hint: str | None = None,
) -> Block:
    block: Block = {
        "type": "input",
        "block_id": field,
        "label": plain(label, 2000),
        "element": {**element, "action_id": INPUT_ACTION},
        "optional": optional,
    }
    if hint:
        block["hint"] = plain(hint, 2000)
    return block


def _text_input(
    *,
    multiline: bool = False,
    max_length: int | None = None,
    initial: str = "",
    placeholder: str = "",
) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "multiline": multiline}
    if max_length:
        element["max_length"] = max_length
    if initial:
        element["initial_value"] = initial[:max_length] if max_length else initial
    if placeholder:
        element["placeholder"] = plain(placeholder, 150)
    return element


def _option(text: str, value: str) -> dict[str, Any]:
    return {"text": plain(text, 75), "value": value}


def _modal(title: str, blocks: list[Block], *, callback_id: str = "", **extra: Any) -> Block:
    view: Block = {
        "type": "modal",
        "title": plain(title, MODAL_TITLE_MAX),
        "blocks": blocks,
        **extra,
    }
    if callback_id:
        view["callback_id"] = callback_id
    if any(block.get("type") == "input" for block in blocks):
        view["submit"] = plain("Submit", 24)
        view["close"] = plain("Cancel", 24)
    else:
        view["close"] = plain("Close", 24)
    return view


def _service_choices(services: list[str]) -> dict[str, Any]:
    """Every catalog service as a choice: Slack allows 100 options a menu, so a larger
    catalog comes in groups of 100 (up to 100 groups), each labelled with the names it runs
    from and to. Cut at 100 options, services past the 100th could not be picked at all."""
    if len(services) <= OPTIONS_MAX:
        return {"options": [_option(name, name) for name in services]}
    groups = [
        services[start : start + OPTIONS_MAX]
        for start in range(0, min(len(services), OPTIONS_MAX * OPTIONS_MAX), OPTIONS_MAX)
    ]
    return {
        "option_groups": [
            {
                "label": plain(f"{group[0]} to {group[-1]}", 75),
                "options": [_option(name, name) for name in group],
            }
            for group in groups
        ]
    }


def declare_modal(*, origin_channel: str | None, services: Sequence[str]) -> Block:
    """`/incident declare` without arguments: title, severity, impact, affected services."""
    severity_options = [
        _option(t.severity_label(severity).split(" ", 1)[1], severity.value)
        for severity in t.SEVERITY_LABELS
    ]
    if services:
        services_element: dict[str, Any] = {
            "type": "multi_static_select",
            "placeholder": plain("Pick the services affected", 150),
            **_service_choices(list(services)),
        }
    else:
        services_element = _text_input(placeholder="checkout, payments", max_length=500)
    blocks = [
        _input(
            "title",
            "Title",
            _text_input(max_length=TITLE_MAX, placeholder="Checkout API returns 502"),
        ),
        _input(
            "severity",
            "Severity",
            {
                "type": "static_select",
                "placeholder": plain("How bad is it?", 150),
                "options": severity_options,
            },
            hint="P0 outage, data loss or breach · P1 major feature down · "
            "P2 minor feature, moderate impact · P3 cosmetic",
        ),
        _input(
            "impact",
            "Impact",
            _text_input(multiline=True, max_length=IMPACT_MAX, placeholder="Who sees what?"),
            optional=True,
        ),
        _input("services", "Affected services", services_element, optional=True),
    ]
    return _modal(
        "Declare an incident",
        blocks,
        callback_id=DECLARE_VIEW,
        private_metadata=json.dumps({"channel": origin_channel}),
    )


def loading_modal(title: str) -> Block:
    """Opened at once with the trigger_id (3 s); replaced by the real form after a lookup."""
    return _modal(title, [section(":hourglass_flowing_sand: Loading…")])


def message_modal(title: str, text: str) -> Block:
    return _modal(title, [section(text)])


def error_modal(title: str, error: str) -> Block:
    """A form that could not open, and why: `error` is plain text that may quote what the
    user typed (`/incident postmortem <x|y>`), shown as text, never as a link or mention."""
    return message_modal(title, escape_mrkdwn(error))


def update_modal(incident: Incident, *, origin_channel: str | None) -> Block:
    """The "Post update" form, prefilled from the template: status, current status, ETA,
    impact."""
    # Only the current status and later ones: an update never moves an incident back.
    allowed = ORDER[ORDER.index(incident.status) :]
    options = [_option(status.label, status.value) for status in allowed]
    current = next(option for option in options if option["value"] == incident.status.value)
    eta_hint = "A duration from now: 30m, 2h, 1d. Leave empty to keep the current ETA"
    if incident.eta_at is not None:
        eta_hint += f" ({incident.eta_at:%Y-%m-%d %H:%M} UTC)"
    blocks = [
        section(
            f"*{incident.id}*: {t.said(incident.title)} · {t.severity_label(incident.severity)}"
        ),
        _input(
            "status",
            "Status",
            {"type": "static_select", "options": options, "initial_option": current},
        ),
        _input(
            "message",
            "Current status",
            _text_input(
                multiline=True,
                max_length=MESSAGE_MAX,
                initial=incident.current_status,
                placeholder="What is happening and what is being done",
            ),
        ),
        _input(
            "eta",
            "ETA",
            _text_input(max_length=20, placeholder="30m"),
            optional=True,
            hint=eta_hint + ".",
        ),
        _input(
            "impact",
            "Impact",
            _text_input(multiline=True, max_length=IMPACT_MAX, initial=incident.impact),
            optional=True,
        ),
    ]
    if not incident.drill:  # practice never goes on the status page
        blocks.append(
            _input(
                "publish",
                "Status page",
                {
                    "type": "checkboxes",
                    "options": [_option("Publish to the status page", PUBLISH_OPTION)],
                },
                optional=True,
                hint="The incident and this update, for anyone to read. Notes, roles and"
                " diagnoses never go there.",
            )
        )
    return _modal(
        "Post an update",
        blocks,
        callback_id=UPDATE_VIEW,
        private_metadata=json.dumps(
            {"incident": incident.id, "channel": origin_channel, **update_form_shown(incident)}
        ),
    )
