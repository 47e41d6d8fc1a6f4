"""Input that must not stall the bot or reach the database unchecked (issue 7.2, 7.3, 7.4).

Driven over HTTP into the running app as Slack sends it: huge words, NUL bytes, absurd ETAs,
an update whose options leave no message. Each gets a clear answer, is audited like every
refused command, and changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from aiohttp import ClientSession, web

from bot.audit import AuditEntry
from bot.incidents.schemas import COMMAND_TEXT_MAX
from bot.slack import blocks, modals, remediation_blocks, report_blocks
from bot.slack.requests import slash_command_body
from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import count, declare, policy_with, reply, stored_state
from tests.harness import BotHarness
from tests.waiting import until

HUGE_WORD = "x" * 40_000


class HeldResponses:
    """A response_url endpoint that records each answer and holds it until released: the
    requests that post there stay in flight for as long as the test wants."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.released = asyncio.Event()
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/held", self._post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/held"

    async def stop(self) -> None:
        self.released.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _post(self, request: web.Request) -> web.Response:
        async with self._arrived:
            self.posts.append(await request.json())
            self._arrived.notify_all()
        await self.released.wait()
        return web.Response(text="ok")

    async def wait_for(self, count: int, timeout: float) -> None:
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: len(self.posts) >= count), timeout
            )


def _healthz(harness: BotHarness) -> str:
    return harness.app_url.replace("/slack/events", "/healthz")


async def _entries(harness: BotHarness) -> list[Any]:
    return [e async for e in harness.services.audit.entries() if e.actor.startswith("U0")]


# -- 7.2: no input stalls the bot -------------------------------------------------------


async def test_huge_words_are_refused_and_healthz_answers_while_they_are_in_flight(
    harness: BotHarness,
) -> None:
    texts = [
        HUGE_WORD,
        f"declare P1 {HUGE_WORD}",
        f"note {HUGE_WORD}",
        f"update monitoring {HUGE_WORD}",
        f"ack {HUGE_WORD}",
        f"list {HUGE_WORD}",
        f"escalate {HUGE_WORD}",
        f"assign commander {HUGE_WORD}",
    ]
    held = HeldResponses()
    await held.start()
    try:
        bodies = [
            slash_command_body(text=text, user_id="U0ALICE", response_url=held.url)
            for text in texts
        ]
        acks = await asyncio.gather(*(harness.sender.send(body) for body in bodies))
        assert [ack.status for ack in acks] == [200] * len(texts)
        # Every command has been read, refused and audited, and now waits on its answer.
        await held.wait_for(len(texts), timeout=30)
        async with ClientSession() as session, session.get(_healthz(harness)) as health:
            assert health.status == 200
            assert (await health.json())["ok"] is True
    finally:
        await held.stop()
    for post in held.posts:
        assert post["response_type"] == "ephemeral"
        assert "That command is 40,0" in post["text"]
        assert f"a command may be at most {COMMAND_TEXT_MAX:,}" in post["text"]
    entries = await _entries(harness)
    assert [e.outcome for e in entries] == ["rejected: usage"] * len(texts)
    # Recorded as an excerpt that says how long the whole was.
    assert all(len(json.dumps(e.args)) < 700 for e in entries)
    assert all("characters)" in e.args["text"] for e in entries)
    assert await count(harness, "incidents") == 0


# -- NUL bytes and absurd ETAs, on both stores (7.3) -----------------------------------


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_nul_bytes_and_absurd_etas_get_a_clear_answer_and_are_audited(
    make_harness: HarnessFactory, store: str
) -> None:
    harness = await make_harness(store)
    incident = await declare(harness, "declare P2 Search is slow")
    before = await stored_state(harness)
    audited = await count(harness, "audit_log")
    refused = {
        "declare P1 API\x00down": "The command contains a control character (U+0000).",
        f"note {incident.id} pool\x00size": "control character (U+0000)",
        f"update {incident.id} monitoring Fix\x00 eta 30m": "control character (U+0000)",
        "frob\x00nicate": "control character (U+0000)",
        f"ack {incident.id}\x00": "control character (U+0000)",
        f"update {incident.id} monitoring Fix eta 99999999999999999999d": "at most 30 d away",
        f"update {incident.id} monitoring Fix eta 40d": "at most 30 d away",
    }
    for text, problem in refused.items():
        assert problem in await reply(harness, text)
    # A button whose value is no incident ID (a NUL byte in it) is refused the same way.
    for button in (blocks.ACK_ACTION, blocks.ESCALATE_ACTION):
        await harness.click(button, value=f"{incident.id}\x00", channel_id="C0GENERAL")
        [answer] = await harness.replies()
        assert "There is no such incident" in answer["text"]
    await harness.settle()

    assert await stored_state(harness) == before
    entries = [e async for e in harness.services.audit.entries()][audited:]
    assert [e.outcome.split(":")[0] for e in entries] == ["rejected"] * 7 + ["refused"] * 2
    assert "API\\x00down" in entries[0].args["text"]
    assert all("\x00" not in json.dumps(e.to_json()) for e in entries)
    assert (await harness.services.audit.verify()).ok


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_a_nul_byte_in_a_form_is_shown_beside_the_field(
    make_harness: HarnessFactory, store: str
) -> None:
    harness = await make_harness(store)
    await harness.command("declare")
    [opened] = await harness.double.wait_for("views.open")
    values = {
        "title": {"value": "API\x00down"},
        "severity": {"value": {"type": "static_select", "selected_option": {"value": "P1"}}},
    }
    view = opened.response["view"]
    response = await harness.submit_view(modals.DECLARE_VIEW, values, view=view)
    assert response.body == {
        "response_action": "errors",
        "errors": {"title": "The title contains a control character (U+0000)."},
    }
    assert await count(harness, "incidents") == 0

    # The refusal is audited once answered (the answer comes first): wait for the entry.
    async def audited() -> list[AuditEntry]:
        return [e async for e in harness.services.audit.entries()]

    async def any_audited() -> bool:
        return bool(await audited())

    await until(any_audited, "the refusal's audit entry")
    [entry] = await audited()
    assert entry.outcome == "rejected: usage" and entry.args["form"]["title"] == "API\\x00down"


# -- an update whose options leave no message (7.4) ---------------------------------------


async def test_an_update_without_a_message_changes_nothing(harness: BotHarness) -> None:
    incident = await declare(harness)
    room = incident.channel_id or ""
    before = await stored_state(harness)
    answer = await reply(harness, "update monitoring eta 30m", channel_id=room)
    assert "Say what is happening after the status, before `eta` or `impact`" in answer
    await harness.settle()
    assert await stored_state(harness) == before
    stored = await harness.services.incidents.get(incident.id)
    assert stored.current_status != "eta 30m" and stored.eta_at is None


# -- numbers that only look like numbers ---------------------------------------------------

# '²' passes str.isdigit() and int() refuses it; 19 digits pass the store's BIGINT; 5,000
# digits pass Python's limit for reading an integer.
NOT_NUMBERS = ["²", "9" * 19, "1" * 5000]


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_numbers_that_only_look_like_numbers_get_a_clear_answer(
    make_harness: HarnessFactory,
    store: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDERS_DB_URL", "postgresql://nobody@127.0.0.1:9/orders")
    policy = policy_with(services={"orders": {"postgres": {"dsn_env": "ORDERS_DB_URL"}}})
    harness = await make_harness(store, policy=policy)
    before = await stored_state(harness)
    caplog.set_level(logging.WARNING)
    assert "'²' is not a number of days" in await reply(harness, "stats ²")
    for words, problem in {
        "pids=4242,²": "pids: give them as numbers",
        "older_than=²": "older_than: invalid duration '²'",
    }.items():
        await harness.command(f"postgres.terminate_idle orders {words}", command="/remediate")
        [answer] = await harness.replies()
        assert problem in answer["text"], answer
    for number, value in enumerate(NOT_NUMBERS, start=1):
        for action in (remediation_blocks.APPROVE_ACTION, remediation_blocks.DENY_ACTION):
            await harness.click(action, value=value, channel_id="C0GENERAL")
            [answer] = await harness.replies()
            assert "No remediation request #0" in answer["text"], (action, value[:20], answer)
        # Close answers with an ephemeral message (it may come from the App Home or a DM).
        await harness.click(report_blocks.CLOSE_ITEM_ACTION, value=value, channel_id="C0GENERAL")
        answer = (await harness.double.wait_for("chat.postEphemeral", count=number))[-1]
        assert "That button names no action item" in answer.params["text"], value[:20]
    await harness.settle()
    assert await stored_state(harness) == before
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert failures == []
