"""Log lines keep the logger names they had before their code moved to a module of its own:
operators match them (with their level) in log-based alerts, and a moved function must not
silently take its lines out of such an alert."""

from __future__ import annotations

import logging
import socket
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.alerts import alertmanager
from commands.interactions import open_form
from tests.local_http import serving


async def test_a_silence_left_running_in_alertmanager_is_logged_as_bot_alerts_silences(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A silence made whose record failed, that Alertmanager would not expire: the alerts it
    holds stay muted until it ends. Logged as bot.alerts.silences, where it was logged before
    Alertmanager's API moved to bot.alerts.alertmanager."""

    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=500)

    app = web.Application()
    app.router.add_delete("/api/v2/silence/{id}", refuse)
    caplog.set_level(logging.WARNING)
    async with serving(app) as url, aiohttp.ClientSession() as session:
        left = await alertmanager.expire(session, url, ["0f2d-made"])
    assert left == ["0f2d-made"]
    [record] = [r for r in caplog.records if "could not be expired" in r.getMessage()]
    assert record.name == "bot.alerts.silences"


async def test_a_form_slack_did_not_answer_is_logged_as_commands_context(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """views.open unanswered: logged as commands.context, where it was logged before Slack's
    interactivity moved to commands.interactions."""
    from slack_sdk.web.async_client import AsyncWebClient

    told: list[str] = []

    async def respond(**kwargs: Any) -> None:
        told.append(str(kwargs.get("text")))

    caplog.set_level(logging.INFO)
    with socket.socket() as held:  # bound, never listening: nothing answers there
        held.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{held.getsockname()[1]}"
        client = AsyncWebClient(token="xoxb-test", base_url=f"{url}/api/", retry_handlers=[])
        opened = await open_form(client, "1.2.trigger", {"type": "modal"}, "declare", respond)
    assert opened is None
    assert len(told) == 1
    [record] = [r for r in caplog.records if "views.open for the declare form" in r.getMessage()]
    assert record.name == "commands.context"
