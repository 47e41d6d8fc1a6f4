"""Signed Slack requests: signatures slack_sdk accepts, bodies slack_bolt parses as Slack's."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import parse_qs

from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.payload_utils import (
    is_action,
    is_event,
    is_slash_command,
    is_view_submission,
    to_action,
    to_event,
    to_view,
)
from slack_sdk.signature import SignatureVerifier

from bot.slack.requests import (
    FORM,
    JSON,
    block_actions_body,
    block_actions_payload,
    event_callback_body,
    new_trigger_id,
    sign,
    signed_headers,
    slash_command_body,
    slash_command_payload,
    state_values,
    url_verification_body,
    view_submission_body,
)

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def _verifier_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _bolt_body(body: str, content_type: str) -> dict:
    """What slack_bolt makes of the body: the same parser the app runs."""
    return AsyncBoltRequest(body=body, headers={"content-type": [content_type]}).body


def test_sign_matches_slack_sdk() -> None:
    body, ts = "token=x&command=%2Fincident", 1_700_000_000
    expected = SignatureVerifier(SECRET).generate_signature(timestamp=str(ts), body=body)
    assert sign(SECRET, body, ts) == expected
    assert re.fullmatch(r"v0=[0-9a-f]{64}", expected)


def test_signed_headers_are_accepted_by_slack_sdk_verifier() -> None:
    body, _ = slash_command_body(text="declare sev1 db down")
    headers = signed_headers(SECRET, body)
    assert SignatureVerifier(SECRET).is_valid_request(body, _verifier_headers(headers))
    assert headers["Content-Type"] == FORM
    assert "X-Slack-Retry-Num" not in headers


def test_tampered_body_is_rejected() -> None:
    body, _ = slash_command_body(text="declare sev1")
    headers = _verifier_headers(signed_headers(SECRET, body))
    tampered = body.replace("sev1", "sev4")
    assert not SignatureVerifier(SECRET).is_valid_request(tampered, headers)


def test_wrong_secret_is_rejected() -> None:
    body, _ = slash_command_body()
    headers = _verifier_headers(signed_headers("another-secret", body))
    assert not SignatureVerifier(SECRET).is_valid_request(body, headers)


def test_stale_timestamp_is_rejected() -> None:
    body, _ = slash_command_body()
    # Slack's replay window is 5 minutes; a correct signature on an old timestamp must fail.
    stale = int(time.time()) - 6 * 60
    headers = _verifier_headers(signed_headers(SECRET, body, timestamp=stale))
    assert not SignatureVerifier(SECRET).is_valid_request(body, headers)


def test_retry_headers_only_when_asked() -> None:
    headers = signed_headers(
        SECRET, "{}", retry_num=2, retry_reason="http_error", content_type=JSON
    )
    assert headers["X-Slack-Retry-Num"] == "2"
    assert headers["X-Slack-Retry-Reason"] == "http_error"
    assert headers["Content-Type"] == JSON


def test_slash_command_body_is_form_encoded_like_slack() -> None:
    body, content_type = slash_command_body(
        text="declare sev1 db down", user_id="U0ALICE", response_url="http://x/response/1"
    )
    assert content_type == FORM
    fields = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
    assert fields["command"] == "/incident"
    assert fields["text"] == "declare sev1 db down"
    assert fields["user_id"] == "U0ALICE"
    assert fields["channel_id"] == "C0TEST"
    assert fields["team_id"] == "T0TEST"
    assert fields["response_url"] == "http://x/response/1"
    assert body.startswith("token=")  # Slack's field order
    parsed = _bolt_body(body, content_type)
    assert is_slash_command(parsed)
    assert parsed["text"] == "declare sev1 db down"


def test_empty_text_survives_encoding() -> None:
    body, content_type = slash_command_body()
    assert _bolt_body(body, content_type)["text"] == ""


def test_trigger_ids_are_unique_and_slack_shaped() -> None:
    first = slash_command_payload()["trigger_id"]
    second = slash_command_payload()["trigger_id"]
    assert first != second
    assert re.fullmatch(r"\d{13}\.\d+\.[0-9a-f]{32}", first)
    minted_ms = int(new_trigger_id(now=1_700_000_000.5).split(".")[0])
    assert minted_ms == 1_700_000_000_500


def test_block_actions_body_takes_element_from_message() -> None:
    message = {
        "type": "message",
        "ts": "1764253442.000100",
        "text": "INC-42",
        "blocks": [
            {
                "type": "actions",
                "block_id": "incident_actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "resolve",
                        "text": {"type": "plain_text", "text": "Resolve"},
                        "value": "INC-42",
                        "style": "danger",
                    }
                ],
            }
        ],
    }
    body, content_type = block_actions_body("resolve", message=message, channel_id="C0INC")
    assert content_type == FORM
    assert body.startswith("payload=")
    parsed = _bolt_body(body, content_type)
    assert is_action(parsed)
    action = to_action(parsed)
    assert action is not None
    assert action["block_id"] == "incident_actions"
    assert action["value"] == "INC-42"
    assert action["text"]["text"] == "Resolve"
    assert parsed["container"] == {
        "type": "message",
        "message_ts": "1764253442.000100",
        "channel_id": "C0INC",
        "is_ephemeral": False,
    }
    assert parsed["channel"]["id"] == "C0INC"
    assert parsed["message"] == message


def test_block_actions_from_a_modal_have_a_view_container() -> None:
    view = {"id": "V0SBX000001", "type": "modal", "blocks": []}
    payload = block_actions_payload(
        "pick_severity",
        view=view,
        action_overrides={"type": "static_select", "selected_option": {"value": "sev1"}},
    )
    assert payload["container"] == {"type": "view", "view_id": "V0SBX000001"}
    assert "response_url" not in payload
    assert payload["actions"][0]["selected_option"] == {"value": "sev1"}


def test_view_submission_body_shapes_state_values() -> None:
    body, content_type = view_submission_body(
        "declare_incident",
        {"title": {"title_input": "DB down"}, "sev": {"sev_select": {"type": "static_select"}}},
        user_id="U0ALICE",
        private_metadata='{"channel": "C0TEST"}',
    )
    parsed = _bolt_body(body, content_type)
    assert is_view_submission(parsed)
    view = to_view(parsed)
    assert view is not None
    assert view["callback_id"] == "declare_incident"
    assert view["private_metadata"] == '{"channel": "C0TEST"}'
    assert view["state"]["values"]["title"]["title_input"] == {
        "type": "plain_text_input",
        "value": "DB down",
    }
    assert parsed["user"]["id"] == "U0ALICE"


def test_state_values_keeps_full_leaves() -> None:
    leaf = {"type": "users_select", "selected_user": "U1"}
    assert state_values({"b": {"a": leaf}}) == {"b": {"a": leaf}}


def test_event_callback_body_is_json_with_authorizations() -> None:
    event = {"type": "app_mention", "user": "U0ALICE", "text": "<@U0TESTBOT> status", "ts": "1.2"}
    body, content_type = event_callback_body(event, event_id="Ev0TEST1")
    assert content_type == JSON
    parsed = json.loads(body)
    assert parsed["event_id"] == "Ev0TEST1"
    assert parsed["authorizations"][0]["user_id"] == "U0TESTBOT"
    bolt_view = _bolt_body(body, content_type)
    assert is_event(bolt_view)
    assert to_event(bolt_view) == event


def test_url_verification_body() -> None:
    body, content_type = url_verification_body("challenge-123")
    assert content_type == JSON
    assert json.loads(body)["challenge"] == "challenge-123"
