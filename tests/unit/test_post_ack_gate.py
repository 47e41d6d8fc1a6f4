"""Work after the ack is bounded (bot.slack.middleware.GatedAck): every request is acked at
once, while at most POST_ACK_CONCURRENCY listeners are past their ack; the rest go on as
slots free up."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.coordination import LocalCoordinator
from bot.slack import middleware
from bot.slack.requests import new_trigger_id, slash_command_body
from tests.waiting import until


def _app() -> AsyncApp:
    async def authorize(
        enterprise_id: str | None, team_id: str | None, user_id: str | None
    ) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=enterprise_id, team_id=team_id, bot_token="xoxb-t", user_id=user_id
        )

    return AsyncApp(
        authorize=authorize,
        request_verification_enabled=False,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )


async def test_acks_are_not_held_by_work_after_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(middleware, "POST_ACK_CONCURRENCY", 2)
    app = _app()
    middleware.install(app, LocalCoordinator())
    release = asyncio.Event()
    working = 0
    most = 0
    finished = 0

    @app.command("/incident")
    async def listener(ack: AsyncAck) -> None:
        nonlocal working, most, finished
        await ack()
        working += 1
        most = max(most, working)
        await release.wait()
        working -= 1
        finished += 1

    async def send() -> int:
        body, _ = slash_command_body(text="declare P2 x", trigger_id=new_trigger_id())
        headers: dict[str, Any] = {"content-type": "application/x-www-form-urlencoded"}
        response = await app.async_dispatch(AsyncBoltRequest(body=body, headers=headers))
        return response.status

    statuses = await asyncio.gather(*(send() for _ in range(5)))
    # All five acked while two listeners hold both slots and three wait behind them.
    assert statuses == [200] * 5
    await until(lambda: working == 2)
    assert finished == 0
    release.set()
    await until(lambda: finished == 5)
    assert most == 2
