"""The console's renderer: Block Kit and mrkdwn in, terminal text out."""

from __future__ import annotations

from typing import Any

import pytest

from bot.console.render import (
    PLAIN,
    InputField,
    Option,
    StaticNames,
    Style,
    changed_lines,
    clean_mrkdwn,
    confirm_question,
    counter,
    field_prompt,
    find_element,
    headline,
    input_fields,
    render_blocks,
    render_message,
    render_notice,
    render_view,
    state_value,
    strip_ansi,
    view_errors,
)

NAMES = StaticNames(
    users={"U0ALICE": "alice"},
    channels={"C0INC": "incidents"},
    usergroups={"S0SRE": "sre"},
)
UTF8 = Style(color=False, unicode=True)
COLOR = Style(color=True, unicode=True)


def _button(text: str, action_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        **extra,
    }


# ----- mrkdwn ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("paged <@U0ALICE>", "paged @alice"),
        ("paged <@U0BOB>", "paged @U0BOB"),  # unknown user: the ID
        ("paged <@U0BOB|bob>", "paged @bob"),
        ("see <#C0INC>", "see #incidents"),
        ("see <#C0NEW|war-room>", "see #war-room"),
        ("see <#C0NEW>", "see #C0NEW"),
        (
            "at <!date^1795000000^{date_short_pretty} {time}|2026-11-19 09:46 UTC>",
            "at 2026-11-19 09:46 UTC",
        ),
        ("ping <!subteam^S0SRE>", "ping @sre"),
        ("ping <!subteam^S0DBA|@dba>", "ping @dba"),
        ("ping <!subteam^S0DBA>", "ping @S0DBA"),
        ("<!here> and <!channel|@channel>", "@here and @channel"),
        ("<https://status.example.com|status page>", "status page (https://status.example.com)"),
        ("<https://status.example.com>", "https://status.example.com"),
        ("<mailto:oncall@example.com|oncall@example.com>", "oncall@example.com"),
        ("a &lt;b&gt; &amp; c", "a <b> & c"),
        ("*Status* is _bad_ and ~gone~", "Status is bad and gone"),
        ("keep `*as is* <@U0ALICE>` in code", "keep `*as is* <@U0ALICE>` in code"),
        ("ack_within and snake_case_names stay", "ack_within and snake_case_names stay"),
        ("2*3*4 is maths", "2*3*4 is maths"),
        ("at 14:05:30 UTC", "at 14:05:30 UTC"),
    ],
)
def test_mrkdwn_is_cleaned_up(raw: str, expected: str) -> None:
    assert clean_mrkdwn(raw, NAMES, PLAIN) == expected


def test_emoji_become_characters_only_when_the_terminal_speaks_utf8() -> None:
    assert clean_mrkdwn(":large_orange_circle: P1 High", NAMES, UTF8) == "🟠 P1 High"
    assert (
        clean_mrkdwn(":large_orange_circle: P1 High", NAMES, PLAIN)
        == ":large_orange_circle: P1 High"
    )
    assert clean_mrkdwn(":no_such_emoji: ok", NAMES, UTF8) == ":no_such_emoji: ok"
    assert clean_mrkdwn("`:fire:`", NAMES, UTF8) == "`:fire:`"  # code stays code


def test_colour_mode_uses_ansi_and_plain_mode_never_does() -> None:
    coloured = clean_mrkdwn("*Status* and `code`", NAMES, COLOR)
    assert "\x1b[1mStatus\x1b[0m" in coloured and "\x1b[36mcode\x1b[0m" in coloured
    assert "\x1b[" not in clean_mrkdwn("*Status* and `code`", NAMES, UTF8)
    assert strip_ansi(coloured) == "Status and code"


def test_code_blocks_keep_their_lines_and_skip_formatting() -> None:
    text = "Output:\n```\nSELECT *\nFROM t WHERE a &lt; 2 -- *x*\n```"
    assert clean_mrkdwn(text, NAMES, PLAIN) == "Output:\nSELECT *\nFROM t WHERE a < 2 -- *x*"


# ----- blocks ------------------------------------------------------------------------------

ANNOUNCEMENT: list[dict[str, Any]] = [
    {"type": "header", "text": {"type": "plain_text", "text": "Incident Update: API down"}},
    {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": "*Status*\nINVESTIGATING"},
            {"type": "mrkdwn", "text": "*Severity*\n:large_orange_circle: P1 High"},
            {"type": "mrkdwn", "text": "*Contact*\n<@U0ALICE>"},
            {"type": "mrkdwn", "text": "*Impact*\nCheckout fails\nfor EU users"},
            {"type": "plain_text", "text": "a plain field"},
        ],
    },
    {"type": "section", "text": {"type": "mrkdwn", "text": "*Current Status*\nLooking at it."}},
    {"type": "divider"},
    {
        "type": "context",
        "elements": [
            {"type": "mrkdwn", "text": "*INC-1* · declared by <@U0ALICE>"},
            {"type": "image", "image_url": "https://x/y.png", "alt_text": "bot"},
        ],
    },
    {
        "type": "actions",
        "block_id": "incident_actions",
        "elements": [
            _button("Acknowledge", "ack", style="primary", value="INC-1"),
            _button(
                "Resolve",
                "resolve",
                style="danger",
                confirm={
                    "title": {"type": "plain_text", "text": "Resolve INC-1?"},
                    "text": {"type": "mrkdwn", "text": "This closes *INC-1*."},
                    "confirm": {"type": "plain_text", "text": "Resolve"},
                    "deny": {"type": "plain_text", "text": "Keep open"},
                },
            ),
            {
                "type": "static_select",
                "action_id": "severity",
                "placeholder": {"type": "plain_text", "text": "Severity"},
                "options": [
                    {"text": {"type": "plain_text", "text": "P0"}, "value": "P0"},
                    {"text": {"type": "plain_text", "text": "P1"}, "value": "P1"},
                ],
            },
            {"type": "datepicker", "action_id": "when"},
        ],
    },
]


def test_announcement_reads_like_a_message() -> None:
    rendered = render_blocks(ANNOUNCEMENT, names=NAMES, style=UTF8)
    assert rendered.lines == [
        "INCIDENT UPDATE: API DOWN",
        "Status: INVESTIGATING",
        "Severity: 🟠 P1 High",
        "Contact: @alice",
        "Impact: Checkout fails",
        "  for EU users",
        "a plain field",
        "Current Status",
        "Looking at it.",
        "─" * 40,
        "INC-1 · declared by @alice  [bot]",
        "[1] Acknowledge  [2] Resolve  [3] Severity ▾  (datepicker: not available in the console)",
    ]
    assert [(c.number, c.kind, c.action_id, c.block_id) for c in rendered.controls] == [
        (1, "button", "ack", "incident_actions"),
        (2, "button", "resolve", "incident_actions"),
        (3, "static_select", "severity", "incident_actions"),
    ]
    assert [o.value for o in rendered.controls[2].options] == ["P0", "P1"]


def test_colour_dims_context_and_marks_buttons_by_style() -> None:
    lines = render_blocks(ANNOUNCEMENT, names=NAMES, style=COLOR).lines
    context = next(line for line in lines if "declared by" in line)
    assert context.startswith("\x1b[2m") and "\x1b[1m" not in context  # dim, nothing nested
    actions = lines[-1]
    assert "\x1b[1;32m[1] Acknowledge" in actions and "\x1b[1;31m[2] Resolve" in actions
    assert lines[0] == "\x1b[1mINCIDENT UPDATE: API DOWN\x1b[0m"


def test_numbering_comes_from_the_caller() -> None:
    handed: list[tuple[str | None, str]] = []

    def number(block_id: str | None, action_id: str) -> int:
        handed.append((block_id, action_id))
        return 40 + len(handed)

    blocks = [
        {
            "type": "section",
            "block_id": "b1",
            "text": {"type": "mrkdwn", "text": "Runbook"},
            "accessory": _button("Open", "open_runbook", url="https://wiki/runbook"),
        }
    ]
    rendered = render_blocks(blocks, names=NAMES, style=UTF8, number=number)
    assert rendered.lines == ["Runbook", "[41] Open ↗"]
    assert handed == [("b1", "open_runbook")]
    assert render_blocks(blocks, style=PLAIN, number=counter(7)).lines[-1] == "[7] Open (link)"


def test_rich_text_and_unknown_blocks() -> None:
    blocks = [
        {
            "type": "rich_text",
            "elements": [
                {
                    "type": "rich_text_section",
                    "elements": [
                        {"type": "text", "text": "Paged "},
                        {"type": "user", "user_id": "U0ALICE"},
                        {"type": "text", "text": " in "},
                        {"type": "channel", "channel_id": "C0INC"},
                    ],
                },
                {
                    "type": "rich_text_list",
                    "style": "bullet",
                    "elements": [
                        {
                            "type": "rich_text_section",
                            "elements": [{"type": "text", "text": "one"}],
                        },
                        {
                            "type": "rich_text_section",
                            "elements": [{"type": "text", "text": "two"}],
                        },
                    ],
                },
            ],
        },
        {"type": "video", "title": {"type": "plain_text", "text": "x"}},
    ]
    assert render_blocks(blocks, names=NAMES, style=UTF8).lines == [
        "Paged @alice in #incidents",
        "• one",
        "• two",
        "[video block]",
    ]


def test_message_without_blocks_uses_text_and_shows_files_and_reactions() -> None:
    message = {
        "text": "Report for <@U0ALICE>",
        "files": [{"id": "F1", "title": "INC-1 report", "size": 1234}],
        "reactions": [{"name": "pushpin", "count": 2, "users": ["U0ALICE", "U0BOB"]}],
        "attachments": [{"title": "Details", "text": "all *good*", "fields": []}],
    }
    assert render_message(message, names=NAMES, style=UTF8).lines == [
        "Report for @alice",
        "▌ Details",
        "▌ all good",
        "📎 INC-1 report (1234 bytes)",
        "📌 2",
    ]


def test_find_element_prefers_the_block_and_falls_back_after_an_edit() -> None:
    assert find_element(ANNOUNCEMENT, "resolve", "incident_actions")["style"] == "danger"
    # The bot rebuilt the message with new block IDs: the action still finds its button.
    assert find_element(ANNOUNCEMENT, "resolve", "old_block_id") is not None
    assert find_element(ANNOUNCEMENT, "no_such_action") is None


def test_confirm_dialog_becomes_a_yes_no_question() -> None:
    resolve = find_element(ANNOUNCEMENT, "resolve")
    assert resolve is not None
    assert confirm_question(resolve, NAMES) == (
        "Resolve INC-1? This closes INC-1.",
        "[y = Resolve / N = Keep open] ",
    )
    assert confirm_question(_button("Ack", "ack")) is None


def test_changed_lines_show_only_what_an_edit_changed() -> None:
    before = [
        "INCIDENT: API DOWN",
        "Status: INVESTIGATING",
        "Contact: @alice",
        "[1] Ack  [2] Resolve",
    ]
    after = ["INCIDENT: API DOWN", "Status: IDENTIFIED", "Contact: @alice", "[2] Resolve"]
    assert changed_lines(before, after) == [
        "INCIDENT: API DOWN",
        "Status: IDENTIFIED",
        "[2] Resolve",
    ]
    assert changed_lines(before, before) == []
    assert changed_lines(before, before[:3]) == [
        "INCIDENT: API DOWN",
        "(removed) [1] Ack  [2] Resolve",
    ]


def test_headline_names_the_channel_author_and_tags() -> None:
    assert headline("#incidents", "chatops-bot", ["msg 3", "edited"], style=UTF8) == (
        "#incidents · chatops-bot · msg 3 · edited"
    )
    assert headline("#general", "chatops-bot", ["only you"]) == "#general | chatops-bot | only you"


# ----- notices -----------------------------------------------------------------------------


def test_workspace_changes_become_one_line_notices() -> None:
    def label(channel: str, ts: str) -> str:
        return f"msg 7 ({channel}/{ts})"

    created = render_notice(
        "conversations.create",
        {"name": "inc-1-api-down", "is_private": "true"},
        {"channel": {"id": "C0W", "name": "inc-1-api-down", "is_private": True}},
    )
    assert created == "#inc-1-api-down created (private) by chatops-bot"
    topic = render_notice(
        "conversations.setTopic",
        {"channel": "C0INC", "topic": ":red_circle: P0 · <@U0ALICE>"},
        {},
        names=NAMES,
        style=UTF8,
    )
    assert topic == "#incidents topic: 🔴 P0 · @alice"
    invited = render_notice(
        "conversations.invite",
        {"channel": "C0INC", "users": "U0ALICE,U0GONE"},
        {"errors": [{"user": "U0GONE", "ok": False, "error": "user_not_found"}]},
        names=NAMES,
    )
    assert invited == "@alice added to #incidents by chatops-bot"
    pinned = render_notice(
        "pins.add", {"channel": "C0INC", "timestamp": "1.2"}, {}, names=NAMES, message_label=label
    )
    assert pinned == "chatops-bot pinned msg 7 (C0INC/1.2) in #incidents"
    assert render_notice("users.info", {"user": "U0ALICE"}, {}) is None


# ----- modals ------------------------------------------------------------------------------

MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "update_modal",
    "title": {"type": "plain_text", "text": "Post an update"},
    "submit": {"type": "plain_text", "text": "Post"},
    "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": "For *INC-1*"}},
        {
            "type": "input",
            "block_id": "status",
            "label": {"type": "plain_text", "text": "Status"},
            "element": {
                "type": "static_select",
                "action_id": "pick",
                "options": [
                    {
                        "text": {"type": "plain_text", "text": "Investigating"},
                        "value": "investigating",
                    },
                    {"text": {"type": "plain_text", "text": "Identified"}, "value": "identified"},
                ],
                "initial_option": {
                    "text": {"type": "plain_text", "text": "Identified"},
                    "value": "identified",
                },
            },
        },
        {
            "type": "input",
            "block_id": "message",
            "label": {"type": "plain_text", "text": "What changed"},
            "hint": {"type": "plain_text", "text": "Shown to everyone"},
            "element": {"type": "plain_text_input", "action_id": "text", "multiline": True},
        },
        {
            "type": "input",
            "block_id": "eta",
            "optional": True,
            "label": {"type": "plain_text", "text": "ETA"},
            "element": {"type": "plain_text_input", "action_id": "text", "initial_value": "1h"},
        },
        {
            "type": "input",
            "block_id": "responders",
            "optional": True,
            "label": {"type": "plain_text", "text": "Responders"},
            "element": {"type": "multi_users_select", "action_id": "users"},
        },
    ],
}


def test_modal_inputs_are_read_in_order_with_their_defaults() -> None:
    fields = input_fields(MODAL)
    assert [(f.block_id, f.action_id, f.kind, f.optional, f.initial) for f in fields] == [
        ("status", "pick", "static_select", False, "2"),
        ("message", "text", "plain_text_input", False, ""),
        ("eta", "text", "plain_text_input", True, "1h"),
        ("responders", "users", "multi_users_select", True, ""),
    ]
    assert fields[1].multiline and fields[1].hint == "Shown to everyone"
    lines = render_view(MODAL, style=UTF8)
    assert lines[0] == "┌ Post an update" and lines[1] == "│ For INC-1"
    assert "[Post]" in lines[-1]


def test_field_prompt_numbers_the_options() -> None:
    status = input_fields(MODAL)[0]
    assert field_prompt(status) == [
        "Status (required)",
        "  1) Investigating",
        "  2) Identified",
        "  pick a number",
        "  Status [2]> ",
    ]


def test_placeholder_is_guidance_beside_the_label_not_a_default() -> None:
    eta = InputField("eta", "text", "plain_text_input", "ETA", optional=True, placeholder="30m")
    assert field_prompt(eta) == ["ETA (optional): 30m", "  ETA> "]


def test_state_values_are_what_slack_sends() -> None:
    status, message, eta, responders = input_fields(MODAL)
    identified = MODAL["blocks"][1]["element"]["options"][1]
    assert state_value(status, "") == (
        {"type": "static_select", "selected_option": identified},
        None,
    )
    assert state_value(status, "investigating")[0]["selected_option"]["value"] == "investigating"
    assert state_value(status, "9") == (None, "'9' is not one of the choices (1-2)")
    assert state_value(message, "  ") == (None, "What changed is required")
    assert state_value(message, "Rolled back\nErrors falling") == (
        {"type": "plain_text_input", "value": "Rolled back\nErrors falling"},
        None,
    )
    assert state_value(eta, "") == ({"type": "plain_text_input", "value": "1h"}, None)
    assert state_value(responders, "") == (
        {"type": "multi_users_select", "selected_users": []},
        None,
    )
    assert state_value(responders, "U0A, U0B")[0]["selected_users"] == ["U0A", "U0B"]


def test_optional_empty_and_number_inputs() -> None:
    note = InputField("note", "text", "plain_text_input", "Note", optional=True)
    assert state_value(note, "") == ({"type": "plain_text_input", "value": None}, None)
    count = InputField("count", "n", "number_input", "Replicas")
    assert state_value(count, "three") == (None, "'three' is not a number")
    assert state_value(count, "3") == ({"type": "number_input", "value": "3"}, None)
    colours = InputField(
        "c",
        "c",
        "checkboxes",
        "Checks",
        options=(Option("A", "a", {"value": "a"}), Option("B", "b", {"value": "b"})),
    )
    assert state_value(colours, "2,1") == (
        {"type": "checkboxes", "selected_options": [{"value": "b"}, {"value": "a"}]},
        None,
    )


def test_pickers_and_menus_take_only_what_slack_could_send() -> None:
    # The console sent whatever was typed: "Add index check" as an action item's owner, and
    # "2026-12-05 14:00" as a date-time picker's seconds, which the bot answered with a 500.
    owner = InputField("item_0_owner", "input", "users_select", "Owner", optional=True)
    assert state_value(owner, "Add index check") == (
        None,
        "'Add index check' is not a user ID such as U0BOB",
    )
    assert state_value(owner, "U0BOB") == ({"type": "users_select", "selected_user": "U0BOB"}, None)
    people = InputField("p", "input", "multi_users_select", "Responders", optional=True)
    assert state_value(people, "U0A, bob")[1] == "'bob' is not user IDs, comma-separated"
    due = InputField("item_0_due", "input", "datepicker", "Due", optional=True)
    assert state_value(due, "U0BOB") == (None, "'U0BOB' is not YYYY-MM-DD")
    assert state_value(due, "2026-12-20") == (
        {"type": "datepicker", "selected_date": "2026-12-20"},
        None,
    )
    started = InputField("started_at", "input", "datetimepicker", "Impact started at")
    assert state_value(started, "2026-12-05 14:00") == (
        {"type": "datetimepicker", "selected_date_time": 1796479200},
        None,
    )
    assert state_value(started, "14:00")[1] == "'14:00' is not YYYY-MM-DD HH:MM, in UTC"
    [shown] = input_fields(
        {
            "blocks": [
                {
                    "type": "input",
                    "block_id": "started_at",
                    "label": {"type": "plain_text", "text": "Impact started at"},
                    "element": {
                        "type": "datetimepicker",
                        "action_id": "input",
                        "initial_date_time": 1796479200,
                    },
                }
            ]
        }
    )
    assert shown.initial == "2026-12-05 14:00" and shown.supported


def test_view_errors_name_the_fields() -> None:
    errors = {"message": "Say what changed", "unknown_block": "Odd"}
    assert view_errors(errors, input_fields(MODAL)) == [
        "What changed: Say what changed",
        "unknown_block: Odd",
    ]


def test_view_errors_say_which_row_a_shared_label_is() -> None:
    # The postmortem form's action item rows each have an "Owner": an error must say which.
    fields = [
        InputField(f"item_{row}_{part}", "input", "plain_text_input", label)
        for row in range(3)
        for part, label in (("text", f"Action item {row + 1}"), ("owner", "Owner"))
    ]
    errors = {"item_0_owner": "Choose who owns it.", "item_2_owner": "Choose who owns it."}
    assert view_errors(errors, fields) == [
        "Owner (1 of 3, after Action item 1): Choose who owns it.",
        "Owner (3 of 3, after Action item 3): Choose who owns it.",
    ]
