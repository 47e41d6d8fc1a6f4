"""The Web API client the bot uses: every call paced, every 429 holding its keys."""

from __future__ import annotations

import logging
from typing import Any, cast

import aiohttp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.context.respond.internals import _build_message
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from slack_sdk.webhook import WebhookResponse
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot import metrics
from bot.http_errors import UNREACHABLE, retry_after_seconds
from bot.slack.limits import SlackLimits
from bot.slack.pace import LocalPacer, Pacer, keys_for, wait_turn


class _SdkLog(logging.LoggerAdapter[logging.Logger]):
    """slack_sdk's logger, with `level` read as the level in effect.

    slack_sdk builds its debug lines (the whole payload and headers, formatted) whenever
    `logger.level <= DEBUG`, and a logger nobody configured is at NOTSET, 0: every call paid
    for a line that was then dropped, a fifth of slack_sdk's CPU per chat.postMessage. With
    DEBUG configured (on it or an ancestor) the lines are built and written as before; so is
    the INFO line slack_sdk writes, under the same test, when its own retry handler retries.
    """

    @property
    def level(self) -> int:
        return int(self.logger.getEffectiveLevel())


_WEB_LOG = cast(logging.Logger, _SdkLog(logging.getLogger("slack_sdk.web.async_client")))
_WEBHOOK_LOG = cast(logging.Logger, _SdkLog(logging.getLogger("slack_sdk.webhook.async_client")))


class PacedWebClient(AsyncWebClient):
    """AsyncWebClient whose calls wait for their slot under Slack's limits.

    Every generated method (chat_postMessage, conversations_create...) goes through
    `api_call`, Bolt's `say` and `client` included, so nothing reaches Slack unpaced.
    """

    def __init__(
        self, *, pacer: Pacer | None = None, limits: SlackLimits | None = None, **kwargs: Any
    ) -> None:
        kwargs.setdefault("logger", _WEB_LOG)
        super().__init__(**kwargs)
        self.pacer: Pacer = pacer or LocalPacer()
        self._given_limits = limits or SlackLimits()
        self.limits = self._given_limits.for_pacer()

    def keep_connections(self) -> None:
        """Share one aiohttp session (and its keep-alive connections) between calls; call
        inside the running loop. Without it slack_sdk opens a session, and a TCP connection,
        for every call: in a profile of a burst of declarations that was a tenth of the
        bot's Slack-call CPU. Clients made by `with_token` afterwards share it too."""
        if self.session is None or self.session.closed:
            self.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                trust_env=self.trust_env_in_session,
            )

    async def close_connections(self) -> None:
        if self.session is not None and not self.session.closed:
            await self.session.close()

    def with_token(self, token: str | None) -> PacedWebClient:
        """A client like this one (same pacer, session and limits) for another token."""
        return PacedWebClient(
            token=token,
            base_url=self.base_url,
            timeout=self.timeout,
            session=self.session,
            headers=self.headers,
            pacer=self.pacer,
            limits=self._given_limits,
        )

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        params: dict[str, Any] = {}
        for part in ("params", "data", "json"):
            value = kwargs.get(part)
            if isinstance(value, dict):
                params.update(value)
        keys = keys_for(api_method, params, self.limits)
        await wait_turn(self.pacer, keys)
        metrics.SLACK_CALLS.labels(api_method).inc()
        try:
            return await super().api_call(api_method, **kwargs)
        except UNREACHABLE as exc:
            metrics.SLACK_ERRORS.labels(api_method, type(exc).__name__).inc()
            raise
        except SlackApiError as exc:
            status = getattr(exc.response, "status_code", 0)
            data = getattr(exc.response, "data", None)
            code = data.get("error") if isinstance(data, dict) else None
            metrics.SLACK_ERRORS.labels(api_method, str(code or f"http_{status}")).inc()
            if getattr(exc.response, "status_code", None) == 429:
                metrics.SLACK_RATE_LIMITED.labels(api_method).inc()
                headers = getattr(exc.response, "headers", None) or {}
                wait = retry_after_seconds(headers.get("Retry-After") or headers.get("retry-after"))
                await self.pacer.hold(keys, wait if wait is not None else 1.0)
            raise


class SessionRespond(AsyncRespond):
    """Bolt's `respond` (a POST to the request's response_url) over the Web API client's
    session: Bolt's own opens a session, and a TCP connection, for every answer."""

    def __init__(self, *, response_url: str, session: aiohttp.ClientSession) -> None:
        super().__init__(response_url=response_url)
        self._client = AsyncWebhookClient(url=response_url, session=session, logger=_WEBHOOK_LOG)

    async def __call__(  # type: ignore[override]  # Bolt's respond spells out each field; ours passes them on
        self, text: str | dict[str, Any] = "", **fields: Any
    ) -> WebhookResponse:
        if isinstance(text, dict):
            return await self._client.send_dict(_build_message(**text))
        return await self._client.send_dict(_build_message(text=text, **fields))
