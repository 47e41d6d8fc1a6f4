"""The Slack test double, driven by the real slack_sdk / slack_bolt clients over loopback."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jsonschema
import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.console.workspace import RecordedCall, RecordedResponse, SlackDouble
from bot.slack.requests import (
    SlackRequestSender,
    block_actions_body,
    new_trigger_id,
    slash_command_body,
    slash_command_payload,
)
from tests.harness import SCHEMAS

SPEC_PATH = SCHEMAS / "slack_web_openapi_v2.json"
SIGNING_SECRET = "test-signing-secret"
TS = re.compile(r"\d{10}\.\d{6}")


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def button(text: str, action_id: str = "ack", value: str = "INC-1") -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": value,
    }


@pytest.fixture(scope="module")
def openapi_spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text())


@pytest.fixture
async def slack(openapi_spec: dict[str, Any]) -> AsyncIterator[SlackDouble]:
    double = SlackDouble(
        openapi_spec=openapi_spec,
        users={"U0ALICE": {"name": "alice"}, "U0BOB": {"name": "bob"}},
        usergroups={"S0ONCALL": ["U0ALICE"]},
    )
    await double.start()
    yield double
    await double.stop()


@pytest.fixture
async def client(slack: SlackDouble) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)


async def api_error(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


# ----- auth and messages ---------------------------------------------------------------------


async def test_auth_test_and_token_checks(slack: SlackDouble, client: AsyncWebClient) -> None:
    me = await client.auth_test()
    assert (me["user_id"], me["bot_id"], me["team_id"]) == ("U0TESTBOT", "B0TESTBOT1", "T0TEST")

    wrong = AsyncWebClient(token="xoxb-wrong", base_url=slack.api_url)
    assert (await api_error(wrong.auth_test())).response["error"] == "invalid_auth"
    app_token = AsyncWebClient(token=slack.app_token, base_url=slack.api_url)
    error = await api_error(app_token.auth_test())
    assert error.response["error"] == "not_allowed_token_type"
    anonymous = AsyncWebClient(base_url=slack.api_url)
    assert (await api_error(anonymous.auth_test())).response["error"] == "not_authed"
    assert slack.violations == []


async def test_post_update_and_history(slack: SlackDouble, client: AsyncWebClient) -> None:
    blocks = [section("*INC-1* database down"), {"type": "actions", "elements": [button("Ack")]}]
    first = await client.chat_postMessage(
        channel="C0ANNOUNCE", text="INC-1 declared", blocks=blocks
    )
    second = await client.chat_postMessage(channel="C0ANNOUNCE", text="second")
    assert TS.fullmatch(first["ts"]) and float(second["ts"]) > float(first["ts"])
    assert first["channel"] == "C0ANNOUNCE"
    assert first["message"]["blocks"] == blocks
    assert first["message"]["bot_id"] == "B0TESTBOT1"

    await client.chat_update(channel="C0ANNOUNCE", ts=first["ts"], text="INC-1 resolved", blocks=[])
    current = slack.messages("C0ANNOUNCE")
    assert [m["text"] for m in current] == ["INC-1 resolved", "second"]
    assert current[0]["edited"]["user"] == "U0TESTBOT"

    history = await client.conversations_history(channel="C0ANNOUNCE")
    assert [m["ts"] for m in history["messages"]] == [second["ts"], first["ts"]]  # newest first
    assert slack.calls_to("chat.postMessage")[0].params["blocks"] == blocks
    assert slack.violations == []


async def test_thread_replies_stay_out_of_history(client: AsyncWebClient) -> None:
    parent = await client.chat_postMessage(channel="C0INC", text="timeline")
    await client.chat_postMessage(channel="C0INC", text="update 1", thread_ts=parent["ts"])
    history = await client.conversations_history(channel="C0INC")
    assert [m["text"] for m in history["messages"]] == ["timeline"]
    assert history["messages"][0]["reply_count"] == 1
    error = await api_error(
        client.chat_postMessage(channel="C0INC", text="x", thread_ts="1.000001")
    )
    assert error.response["error"] == "invalid_thread_ts"


async def test_form_encoded_blocks_are_decoded(slack: SlackDouble, client: AsyncWebClient) -> None:
    blocks = [section("from a form body")]
    await client.api_call(
        "chat.postMessage",
        data={"channel": "C0FORM", "text": "form", "blocks": json.dumps(blocks)},
    )
    assert slack.calls_to("chat.postMessage")[0].params["blocks"] == blocks
    assert slack.messages("C0FORM")[0]["blocks"] == blocks


async def test_unknown_channel_is_channel_not_found() -> None:
    async with SlackDouble(channels_exist_by_default=False) as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        error = await api_error(client.chat_postMessage(channel="C0NOPE", text="hi"))
        assert error.response["error"] == "channel_not_found"
        slack.add_channel("C0INCIDENTS", "incidents")
        posted = await client.chat_postMessage(channel="#incidents", text="by name")
        assert posted["channel"] == "C0INCIDENTS"


async def test_bot_must_join_without_chat_write_public() -> None:
    async with SlackDouble(chat_write_public=False) as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        slack.add_channel("C0PUBLIC", "general", bot_is_member=False)
        error = await api_error(client.chat_postMessage(channel="C0PUBLIC", text="hi"))
        assert error.response["error"] == "not_in_channel"
        joined = await client.conversations_join(channel="C0PUBLIC")
        assert joined["channel"]["is_member"] is True
        await client.chat_postMessage(channel="C0PUBLIC", text="hi")
        slack.add_channel("C0SECRET", "secret", is_private=True, bot_is_member=False)
        error = await api_error(client.chat_postMessage(channel="C0SECRET", text="hi"))
        assert error.response["error"] == "channel_not_found"  # private stays invisible


async def test_ephemeral(slack: SlackDouble, client: AsyncWebClient) -> None:
    answer = await client.chat_postEphemeral(channel="C0INC", user="U0ALICE", text="only you")
    assert TS.fullmatch(answer["message_ts"])
    assert slack.ephemerals[0]["user"] == "U0ALICE"
    assert slack.ephemerals[0]["text"] == "only you"
    assert slack.messages("C0INC") == []
    error = await api_error(client.chat_postEphemeral(channel="C0INC", user="U0GHOST", text="x"))
    assert error.response["error"] == "user_not_found"


async def test_delete_and_permalink(slack: SlackDouble, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="C0INC", text="oops")
    link = await client.chat_getPermalink(channel="C0INC", message_ts=posted["ts"])
    assert link["permalink"].endswith(f"/archives/C0INC/p{posted['ts'].replace('.', '')}")
    await client.chat_delete(channel="C0INC", ts=posted["ts"])
    assert slack.messages("C0INC") == []
    error = await api_error(client.chat_delete(channel="C0INC", ts=posted["ts"]))
    assert error.response["error"] == "message_not_found"


# ----- channels --------------------------------------------------------------------------------


async def test_channel_create_and_name_rules(slack: SlackDouble, client: AsyncWebClient) -> None:
    created = await client.conversations_create(name="inc-42-db_down")
    channel = created["channel"]
    assert re.fullmatch(r"C[A-Z0-9]{8,}", channel["id"])
    assert channel["name"] == "inc-42-db_down"
    assert channel["is_member"] is True
    assert slack.channel_by_name("inc-42-db_down") is slack.channel(channel["id"])

    async def create_error(name: str) -> str:
        return (await api_error(client.conversations_create(name=name))).response["error"]

    assert await create_error("inc-42-db_down") == "name_taken"
    assert await create_error("INC-42") == "invalid_name_specials"
    assert await create_error("inc 42") == "invalid_name_specials"
    assert await create_error("inc.42") == "invalid_name_specials"
    assert await create_error("x" * 81) == "invalid_name_maxlength"
    assert await create_error("---") == "invalid_name_punctuation"
    await client.conversations_create(name="x" * 80)


async def test_conversations_list_pages_with_a_cursor(
    slack: SlackDouble, client: AsyncWebClient
) -> None:
    slack.add_channel("C0HUMANS", "general", members=["U0ALICE"])
    slack.add_channel("C0SECRET", "secret", is_private=True, members=["U0ALICE"])
    slack.add_channel("C0HIDDEN", "hidden", is_private=True, bot_is_member=False)
    made = [(await client.conversations_create(name=f"room-{n}"))["channel"] for n in range(5)]
    slack.channel(made[0]["id"]).is_archived = True  # type: ignore[union-attr]

    names: list[str] = []
    pages, cursor = 0, ""
    while True:
        page = await client.conversations_list(exclude_archived=True, limit=2, cursor=cursor)
        pages += 1
        assert len(page["channels"]) <= 2
        names += [c["name"] for c in page["channels"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert names == ["general", "room-1", "room-2", "room-3", "room-4"]  # public, oldest first
    assert pages == 3
    first = (await client.conversations_list(types="public_channel,private_channel"))["channels"]
    assert [c["name"] for c in first] == ["general", "secret", *[f"room-{n}" for n in range(5)]]
    assert {c["creator"] for c in first if c["name"].startswith("room-")} == {"U0TESTBOT"}
    assert first[0]["creator"] == "U0ALICE"  # a channel people made
    for bad, error in (
        ({"cursor": "bm9wZQ=="}, "invalid_cursor"),
        ({"types": "public_channel,dm"}, "invalid_types"),
        ({"limit": 1001}, "invalid_limit"),
    ):
        assert (await api_error(client.conversations_list(**bad))).response["error"] == error


async def test_a_lost_reply_does_the_work_and_drops_the_answer(
    slack: SlackDouble, client: AsyncWebClient
) -> None:
    slack.lose_reply("conversations.create")
    plain = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url, retry_handlers=[])
    with pytest.raises(aiohttp.ClientError):
        await plain.conversations_create(name="inc-lost")
    [call] = slack.calls_to("conversations.create")
    assert call.reply_lost and call.response["ok"] is True
    assert slack.channel_by_name("inc-lost") is not None
    # Used up: the next call is answered, and says what Slack would say.
    assert (await api_error(client.conversations_create(name="inc-lost"))).response[
        "error"
    ] == "name_taken"


async def test_invite_members_and_info(slack: SlackDouble, client: AsyncWebClient) -> None:
    channel_id = (await client.conversations_create(name="inc-7"))["channel"]["id"]
    await client.conversations_invite(channel=channel_id, users=["U0ALICE", "U0BOB"])
    assert slack.members(channel_id) == ["U0TESTBOT", "U0ALICE", "U0BOB"]

    again = await api_error(client.conversations_invite(channel=channel_id, users="U0ALICE"))
    assert again.response["error"] == "already_in_channel"
    unknown = await api_error(client.conversations_invite(channel=channel_id, users="U0GHOST"))
    assert unknown.response["error"] == "user_not_found"
    assert unknown.response["errors"] == [
        {"user": "U0GHOST", "ok": False, "error": "user_not_found"}
    ]
    members = await client.conversations_members(channel=channel_id)
    assert members["members"] == ["U0TESTBOT", "U0ALICE", "U0BOB"]
    info = await client.conversations_info(channel=channel_id, include_num_members=True)
    assert info["channel"]["num_members"] == 3


async def test_topic_pins_and_reactions(slack: SlackDouble, client: AsyncWebClient) -> None:
    channel_id = (await client.conversations_create(name="inc-8"))["channel"]["id"]
    await client.conversations_setTopic(channel=channel_id, topic="SEV1 | IC <@U0ALICE>")
    assert slack.topic(channel_id) == "SEV1 | IC <@U0ALICE>"

    posted = await client.chat_postMessage(channel=channel_id, text="summary")
    await client.pins_add(channel=channel_id, timestamp=posted["ts"])
    assert [m["text"] for m in slack.pins(channel_id)] == ["summary"]
    twice = await api_error(client.pins_add(channel=channel_id, timestamp=posted["ts"]))
    assert twice.response["error"] == "already_pinned"
    missing = await api_error(client.pins_add(channel=channel_id, timestamp="1.000001"))
    assert missing.response["error"] == "message_not_found"

    await client.reactions_add(channel=channel_id, timestamp=posted["ts"], name="eyes")
    assert slack.messages(channel_id)[0]["reactions"][0]["name"] == "eyes"
    colons = await api_error(
        client.reactions_add(channel=channel_id, timestamp=posted["ts"], name=":eyes:")
    )
    assert colons.response["error"] == "invalid_name"
    assert slack.violations == []


async def test_conversations_open_gives_a_dm(slack: SlackDouble, client: AsyncWebClient) -> None:
    opened = await client.conversations_open(users="U0ALICE")
    dm_id = opened["channel"]["id"]
    assert re.fullmatch(r"D[A-Z0-9]{8,}", dm_id)
    assert (await client.conversations_open(users="U0ALICE"))["channel"]["id"] == dm_id
    await client.chat_postMessage(channel=dm_id, text="you are paged")
    assert slack.messages(dm_id)[0]["text"] == "you are paged"
    error = await api_error(client.conversations_open(users="U0GHOST"))
    assert error.response["error"] == "user_not_found"


async def test_users_and_usergroups(client: AsyncWebClient) -> None:
    alice = await client.users_info(user="U0ALICE")
    assert alice["user"]["name"] == "alice"
    assert alice["user"]["profile"]["display_name"] == "alice"
    missing = await api_error(client.users_info(user="U0GHOST"))
    assert missing.response["error"] == "user_not_found"
    oncall = await client.usergroups_users_list(usergroup="S0ONCALL")
    assert oncall["users"] == ["U0ALICE"]
    unknown = await api_error(client.usergroups_users_list(usergroup="S0NONE"))
    assert unknown.response["error"] == "no_such_subteam"


# ----- views and files -------------------------------------------------------------------------


def modal(title: str = "Declare incident") -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "declare",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Declare"},
        "blocks": [
            {
                "type": "input",
                "block_id": "title",
                "label": {"type": "plain_text", "text": "Title"},
                "element": {"type": "plain_text_input", "action_id": "title_input"},
            }
        ],
    }


async def test_views_open_update_push_publish(slack: SlackDouble, client: AsyncWebClient) -> None:
    trigger_id = new_trigger_id()
    opened = (await client.views_open(trigger_id=trigger_id, view=modal()))["view"]
    assert re.fullmatch(r"V[A-Z0-9]{8,}", opened["id"])
    assert opened["callback_id"] == "declare"
    assert opened["state"] == {"values": {}}
    assert slack.views[opened["id"]]["title"]["text"] == "Declare incident"

    reused = await api_error(client.views_open(trigger_id=trigger_id, view=modal()))
    assert reused.response["error"] == "exchanged_trigger_id"
    stale = new_trigger_id(now=time.time() - 10)
    expired = await api_error(client.views_open(trigger_id=stale, view=modal()))
    assert expired.response["error"] == "expired_trigger_id"

    updated = await client.views_update(
        view_id=opened["id"], hash=opened["hash"], view=modal("Declared")
    )
    assert updated["view"]["id"] == opened["id"]
    conflict = await api_error(
        client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal())
    )
    assert conflict.response["error"] == "hash_conflict"

    pushed = await client.views_push(trigger_id=new_trigger_id(), view=modal("Step 2"))
    assert pushed["view"]["root_view_id"] == opened["id"]

    home = {"type": "home", "blocks": [section("Open incidents: 1")]}
    published = await client.views_publish(user_id="U0ALICE", view=home)
    assert published["view"]["type"] == "home"
    assert slack.violations == []


async def test_files_v2_upload_flow(slack: SlackDouble, client: AsyncWebClient) -> None:
    content = "12:00 db down\n12:05 failover\n"
    uploaded = await client.files_upload_v2(
        channel="C0INC",
        content=content,
        filename="timeline.txt",
        title="Timeline",
        initial_comment="Full timeline",
    )
    file_id = uploaded["file"]["id"]
    assert slack.files[file_id].content == content.encode()
    assert slack.files[file_id].title == "Timeline"
    shared = slack.messages("C0INC")[0]
    assert shared["text"] == "Full timeline"
    assert shared["files"][0]["id"] == file_id
    # The 2020 OpenAPI spec lacks the v2 methods: they must not count as violations.
    assert [c.method for c in slack.calls] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]
    assert slack.violations == []


# ----- failure injection and validation --------------------------------------------------------


async def test_injected_failures(slack: SlackDouble, client: AsyncWebClient) -> None:
    slack.fail("chat.postMessage", error="is_archived")
    error = await api_error(client.chat_postMessage(channel="C0INC", text="x"))
    assert error.response["error"] == "is_archived"
    await client.chat_postMessage(channel="C0INC", text="works again")

    slack.rate_limit("chat.postMessage", retry_after=7, times=2)
    for _ in range(2):
        limited = await api_error(client.chat_postMessage(channel="C0INC", text="x"))
        assert limited.response.status_code == 429
        assert limited.response.headers["Retry-After"] == "7"
        assert limited.response["error"] == "ratelimited"
    await client.chat_postMessage(channel="C0INC", text="after the limit")

    slack.http_error("conversations.create", status=503)
    unavailable = await api_error(client.conversations_create(name="inc-9"))
    assert unavailable.response.status_code == 503
    assert [m["text"] for m in slack.messages("C0INC")] == ["works again", "after the limit"]
    assert [c.ok for c in slack.calls_to("chat.postMessage")] == [
        False,
        True,
        False,
        False,
        True,
    ]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"text": "many", "blocks": [section(str(i)) for i in range(51)]}, "51 blocks"),
        (
            {"text": "b", "blocks": [{"type": "actions", "elements": [button("x" * 80)]}]},
            "80 characters; limit 75",
        ),
        ({"blocks": [section("no fallback")]}, "no top-level `text`"),
        ({"text": "long", "blocks": [section("y" * 3001)]}, "3001 characters; limit 3000"),
        (
            {
                "text": "v",
                "blocks": [{"type": "actions", "elements": [button("ok", value="v" * 2001)]}],
            },
            "value is 2001 chars",
        ),
        (
            {
                "text": "f",
                "blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
            },
            "11 fields",
        ),
        ({"text": "typo", "blocks": [{**section("x"), "acton_id": "a"}]}, "'acton_id'"),
        ({"text": "?", "blocks": [{"type": "sectoin", "text": "x"}]}, "unknown block type"),
        (
            {
                "text": "dup",
                "blocks": [{**section("a"), "block_id": "b"}, {**section("c"), "block_id": "b"}],
            },
            "repeats block_id",
        ),
    ],
)
# slack_sdk itself warns about blocks without text; the double must refuse them outright.
@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing:UserWarning")
async def test_invalid_blocks_are_refused_and_recorded(
    slack: SlackDouble, client: AsyncWebClient, payload: dict[str, Any], expected: str
) -> None:
    error = await api_error(client.chat_postMessage(channel="C0INC", **payload))
    assert error.response["error"] == "invalid_blocks"
    assert len(slack.violations) >= 1
    assert any(expected in v for v in slack.violations), slack.violations
    assert slack.violations[0].startswith("chat.postMessage: ")
    assert slack.messages("C0INC") == []


async def test_invalid_views_are_refused(slack: SlackDouble, client: AsyncWebClient) -> None:
    too_many = {**modal(), "blocks": [section(str(i)) for i in range(101)]}
    error = await api_error(client.views_open(trigger_id=new_trigger_id(), view=too_many))
    assert error.response["error"] == "invalid_blocks"
    no_submit = {key: value for key, value in modal().items() if key != "submit"}
    await api_error(client.views_open(trigger_id=new_trigger_id(), view=no_submit))
    long_title = modal("A title longer than twenty-four")
    await api_error(client.views_open(trigger_id=new_trigger_id(), view=long_title))
    assert len(slack.violations) == 3
    assert "101 blocks" in slack.violations[0]
    assert "submit" in slack.violations[1]
    assert "title" in slack.violations[2]
    slack.reset()
    assert slack.violations == [] and slack.calls == []


async def test_openapi_required_params(slack: SlackDouble, client: AsyncWebClient) -> None:
    # slack_sdk's typed method would refuse to omit `user`; a raw call reaches the double.
    await api_error(client.api_call("chat.postEphemeral", json={"channel": "C0INC", "text": "x"}))
    assert slack.violations == ["openapi: chat.postEphemeral is missing required parameter 'user'"]


async def test_responses_match_slack_openapi_schemas(openapi_spec: dict[str, Any]) -> None:
    """The double's answers have Slack's shapes, wherever the 2020 spec describes them."""
    # Full-length IDs: the spec's patterns want real-world lengths (T + 8 or more).
    async with SlackDouble(
        team_id="T0SBX00001", users={"U0ALICE": {}}, openapi_spec=openapi_spec
    ) as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        await _exercise_every_method(client)
        _assert_match_spec(slack.calls, openapi_spec)
        assert slack.violations == []  # and slack_sdk's calls satisfy the spec's parameters


async def _exercise_every_method(client: AsyncWebClient) -> None:
    channel_id = (await client.conversations_create(name="inc-schema"))["channel"]["id"]
    posted = await client.chat_postMessage(channel=channel_id, text="hi", blocks=[section("hi")])
    await client.chat_update(channel=channel_id, ts=posted["ts"], text="edited")
    await client.chat_postEphemeral(channel=channel_id, user="U0TESTBOT", text="eph")
    await client.pins_add(channel=channel_id, timestamp=posted["ts"])
    await client.reactions_add(channel=channel_id, timestamp=posted["ts"], name="eyes")
    await client.conversations_invite(channel=channel_id, users="U0ALICE")
    await client.conversations_setTopic(channel=channel_id, topic="t")
    await client.conversations_info(channel=channel_id)
    await client.conversations_open(users="U0ALICE")
    await client.conversations_members(channel=channel_id)
    await client.conversations_history(channel=channel_id)
    await client.chat_getPermalink(channel=channel_id, message_ts=posted["ts"])
    await client.users_info(user="U0ALICE")
    await client.views_open(trigger_id=new_trigger_id(), view=modal())
    await client.chat_delete(channel=channel_id, ts=posted["ts"])


def _assert_match_spec(calls: list[RecordedCall], openapi_spec: dict[str, Any]) -> None:
    # Fields real Slack returns today that the 2020 spec predates; the real shape wins.
    newer_than_spec = {"app_id", "edited", "response_metadata"}
    checked = 0
    for call in calls:
        operations = openapi_spec["paths"].get(f"/{call.method}")
        if not operations:
            continue
        schema = next(iter(operations.values()))["responses"]["200"]["schema"]
        validator = jsonschema.Draft4Validator(
            {**schema, "definitions": openapi_spec["definitions"]}
        )
        for error in validator.iter_errors(call.response):
            if error.validator == "additionalProperties":
                extra = set(error.instance) - set(error.schema.get("properties", {}))
                if extra <= newer_than_spec:
                    continue
            if call.method == "chat.update" and list(error.absolute_path) == ["message", "blocks"]:
                continue  # the spec types chat.update's message.blocks as an object: a typo
            pytest.fail(f"{call.method}: {error.message} at {list(error.absolute_path)}")
        checked += 1
    assert checked == len(calls) == 16


# ----- response_url, waiting, hooks --------------------------------------------------------------


async def test_response_url_semantics(slack: SlackDouble, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="C0INC", text="Approve?")
    url = slack.new_response_url(channel="C0INC", message_ts=posted["ts"], user_id="U0ALICE")
    webhook = AsyncWebhookClient(url)

    ephemeral = await webhook.send(text="only for you")
    assert (ephemeral.status_code, ephemeral.body) == (200, "ok")
    assert slack.ephemerals[-1]["user"] == "U0ALICE"

    await webhook.send_dict({"replace_original": True, "text": "Approved by <@U0ALICE>"})
    assert slack.messages("C0INC")[0]["text"] == "Approved by <@U0ALICE>"
    await webhook.send(text="Remediation started", response_type="in_channel")
    assert slack.messages("C0INC")[-1]["text"] == "Remediation started"

    invalid = await webhook.send(blocks=[section("no text")])
    assert invalid.status_code == 400 and slack.violations
    await webhook.send(text="4th")
    await webhook.send(text="5th")
    used = await webhook.send(text="6th")
    assert (used.status_code, used.body) == (404, "used_url")
    responses = await slack.wait_for_response(count=7)
    assert [r.http_status for r in responses] == [200, 200, 200, 400, 200, 200, 404]
    assert responses[0].payload["text"] == "only for you"


async def test_wait_for_and_timeout_message(slack: SlackDouble, client: AsyncWebClient) -> None:
    async def post_later() -> None:
        await asyncio.sleep(0.05)
        await client.chat_postMessage(channel="C0INC", text="later")

    task = asyncio.create_task(post_later())
    calls = await slack.wait_for("chat.postMessage", timeout=2)
    await task
    assert calls[0].params["text"] == "later"
    with pytest.raises(TimeoutError, match=r"chat.update.*recorded: \['chat.postMessage'\]"):
        await slack.wait_for("chat.update", timeout=0.05)


async def test_on_event_hook_sees_calls_and_responses() -> None:
    seen: list[RecordedCall | RecordedResponse] = []

    async def record(item: RecordedCall | RecordedResponse) -> None:
        seen.append(item)

    async with SlackDouble(on_event=record) as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        await client.chat_postMessage(channel="C0INC", text="hello")
        await AsyncWebhookClient(slack.new_response_url()).send(text="ack")
    assert isinstance(seen[0], RecordedCall) and seen[0].response["ok"] is True
    assert isinstance(seen[1], RecordedResponse) and seen[1].payload == {"text": "ack"}


# ----- the app over HTTP: signed requests in, Web API calls out -------------------------------


@pytest.fixture
async def bolt_app_url(slack: SlackDouble) -> AsyncIterator[str]:
    app = AsyncApp(
        client=AsyncWebClient(token=slack.bot_token, base_url=slack.api_url),
        signing_secret=SIGNING_SECRET,
    )

    @app.command("/incident")
    async def incident(ack: Any, command: dict[str, Any], respond: Any, client: Any) -> None:
        await ack(f"Declaring: {command['text']}")
        await client.chat_postMessage(channel="C0ANNOUNCE", text=f"Incident: {command['text']}")
        await respond(text="Declared", response_type="ephemeral")

    @app.action("ack")
    async def acknowledge(ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack()
        await respond(replace_original=True, text=f"Acked by <@{body['user']['id']}>")

    runner = web.AppRunner(app.web_app(path="/slack/events"), shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}/slack/events"
    await runner.cleanup()


async def test_signed_requests_drive_a_bolt_app(slack: SlackDouble, bolt_app_url: str) -> None:
    async with SlackRequestSender(bolt_app_url, SIGNING_SECRET) as sender:
        response_url = slack.new_response_url(channel="C0TEST", user_id="U0TEST")
        status, body = await sender.send(
            *slash_command_body(text="db down", response_url=response_url)
        )
        assert (status, body) == (200, "Declaring: db down")
        await slack.wait_for("chat.postMessage")
        await slack.wait_for_response()
        assert slack.messages("C0ANNOUNCE")[0]["text"] == "Incident: db down"
        assert slack.ephemerals[0]["text"] == "Declared"

        # A click on the announcement: the button's response_url replaces the message.
        message = slack.messages("C0ANNOUNCE")[0]
        click_url = slack.new_response_url(channel="C0ANNOUNCE", message_ts=message["ts"])
        status, _ = await sender.send(
            *block_actions_body(
                "ack", "INC-1", channel_id="C0ANNOUNCE", message=message, response_url=click_url
            )
        )
        assert status == 200
        await slack.wait_for_response(count=2)
        assert slack.messages("C0ANNOUNCE")[0]["text"] == "Acked by <@U0TEST>"

        forged, _ = await sender.send(*slash_command_body(), signature="v0=" + "0" * 64)
        stale, _ = await sender.send(*slash_command_body(), timestamp=int(time.time()) - 600)
        assert (forged, stale) == (401, 401)
    assert slack.violations == []


async def test_sender_reuses_a_given_session(bolt_app_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        sender = SlackRequestSender(bolt_app_url, SIGNING_SECRET, session=session)
        response = await sender.send(*slash_command_body(), retry_num=1)
        await sender.close()
        assert not session.closed
    assert response.status == 200


# ----- Socket Mode with the real slack_bolt handler ---------------------------------------------


async def test_socket_mode_handler_connects_acks_and_reconnects(slack: SlackDouble) -> None:
    app = AsyncApp(
        client=AsyncWebClient(token=slack.bot_token, base_url=slack.api_url),
        signing_secret=SIGNING_SECRET,
    )
    handled: list[str] = []

    @app.command("/incident")
    async def incident(ack: Any, command: dict[str, Any]) -> None:
        handled.append(command["text"])
        await ack(f"Declaring: {command['text']}")

    # The socket-mode client asks its web_client for apps.connections.open: point it here.
    handler = AsyncSocketModeHandler(
        app, slack.app_token, web_client=AsyncWebClient(base_url=slack.api_url)
    )
    await handler.connect_async()
    try:
        await slack.wait_connected(1)
        first = await slack.send_envelope(
            "slash_commands",
            slash_command_payload(text="db down"),
            accepts_response_payload=True,
        )
        assert await slack.wait_ack(first) == {
            "envelope_id": first,
            "payload": {"text": "Declaring: db down"},
        }

        await slack.disconnect_clients()
        await slack.wait_connected(2, timeout=10)
        second = await slack.send_envelope(
            "slash_commands", slash_command_payload(text="api slow"), accepts_response_payload=True
        )
        assert (await slack.wait_ack(second))["payload"] == {"text": "Declaring: api slow"}
    finally:
        await handler.close_async()
    assert handled == ["db down", "api slow"]
    assert slack.connection_count == 2
    assert len(slack.calls_to("apps.connections.open")) == 2
    assert all(c.ok for c in slack.calls_to("apps.connections.open"))
    assert slack.violations == []


async def test_markup_slack_would_misread_is_recorded_but_posted(
    slack: SlackDouble, client: AsyncWebClient
) -> None:
    # Slack posts these, reading them wrong: `<service>` is a link, `<https://x|cut` shows raw.
    fine = "<@U1> <#C1> <!here> <!subteam^S1> <!date^1^{time}|x> <https://x|y> &lt;p&gt;"
    await client.chat_postMessage(channel="C0INC", text=fine, blocks=[section(fine)])
    assert slack.violations == []
    await client.chat_postMessage(channel="C0INC", text="Usage: `/diagnose <service>`")
    await client.chat_postMessage(
        channel="C0INC", text="cut", blocks=[section("a link <https://example.com/very|lo…")]
    )
    assert len(slack.messages("C0INC")) == 3
    assert len(slack.violations) == 2, slack.violations
    assert "`<service>` in mrkdwn is not a Slack control sequence" in slack.violations[0]
    assert "blocks[0].text: unclosed `<`" in slack.violations[1]


async def test_a_text_input_prefilled_past_its_max_length_is_refused(
    slack: SlackDouble, client: AsyncWebClient
) -> None:
    view = modal()
    element = view["blocks"][0]["element"]
    element.update(max_length=10, initial_value="x" * 10)
    await client.views_open(trigger_id=new_trigger_id(), view=view)
    assert slack.violations == []
    element["initial_value"] = "x" * 11
    await api_error(client.views_open(trigger_id=new_trigger_id(), view=view))
    element.update(initial_value="x", max_length=3001)
    await api_error(client.views_open(trigger_id=new_trigger_id(), view=view))
    assert len(slack.violations) == 2, slack.violations
    assert "initial_value is 11 characters; max_length 10" in slack.violations[0]
    assert "max_length 3001 is outside 1-3000" in slack.violations[1]
