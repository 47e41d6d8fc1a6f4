"""The Web API client the bot uses: every call paced, every 429 holding its keys."""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot import metrics
from bot.http_errors import UNREACHABLE, retry_after_seconds
from bot.slack.limits import SlackLimits
from bot.slack.pace import LocalPacer, Pacer, keys_for, wait_turn


class PacedWebClient(AsyncWebClient):
    """AsyncWebClient whose calls wait for their slot under Slack's limits.

    Every generated method (chat_postMessage, conversations_create...) goes through
    `api_call`, Bolt's `say` and `client` included, so nothing reaches Slack unpaced.
    """

    def __init__(
        self, *, pacer: Pacer | None = None, limits: SlackLimits | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.pacer: Pacer = pacer or LocalPacer()
        self._given_limits = limits or SlackLimits()
        self.limits = self._given_limits.for_pacer()

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
