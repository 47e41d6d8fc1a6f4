"""response_url on the Slack double: where the bot answers a slash command or a button."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.console.workspace.checks import check_markup, check_message
from bot.console.workspace.recording import RecordedResponse, Recording
from bot.console.workspace.state import WorkspaceState, as_flag

RESPONSE_URL_TTL_SECONDS = 30 * 60
RESPONSE_URL_MAX_POSTS = 5


@dataclass
class ResponseUrl:
    created: float
    channel: str | None
    message_ts: str | None
    user_id: str | None
    posts: int = 0


class ResponseUrls(Recording):
    """SlackDouble's response_urls: handed out with a request, applied when posted to."""

    state: WorkspaceState
    responses: list[RecordedResponse]
    violations: list[str]
    _clock: Callable[[], float]
    _response_urls: dict[str, ResponseUrl]

    @property
    def url(self) -> str:
        raise NotImplementedError  # SlackDouble's root URL

    def new_response_url(
        self,
        *,
        channel: str | None = None,
        message_ts: str | None = None,
        user_id: str | None = None,
    ) -> str:
        """A response_url on the double; give channel/message_ts/user to apply its effects.

        `replace_original`/`delete_original` then edit the message at `message_ts`,
        `response_type: in_channel` posts to `channel`, anything else is ephemeral to `user_id`.
        """
        url_id = secrets.token_hex(12)
        self._response_urls[url_id] = ResponseUrl(self._clock(), channel, message_ts, user_id)
        return f"{self.url}response/{url_id}"

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        url_id = request.match_info["url_id"]
        try:
            payload = await request.json()
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        recorded = RecordedResponse(url_id, payload, self._clock())
        status, text = self._apply_response(url_id, recorded.payload)
        recorded.http_status = status
        self.responses.append(recorded)
        await self._emit(recorded)
        return web.Response(status=status, text=text)

    def _apply_response(self, url_id: str, payload: dict[str, Any]) -> tuple[int, str]:
        entry = self._response_urls.get(url_id)
        if entry is None:
            return 404, "invalid_url"
        if self._clock() - entry.created > RESPONSE_URL_TTL_SECONDS:
            return 404, "expired_url"
        if entry.posts >= RESPONSE_URL_MAX_POSTS:
            return 404, "used_url"
        self.violations.extend(f"response_url: {p}" for p in check_markup(payload))
        problems = check_message(payload)
        if problems:
            self.violations.extend(f"response_url: {p}" for p in problems)
            return 400, "invalid_blocks"
        if as_flag(payload.get("delete_original")):
            if entry.message_ts:
                self.state.delete_message(entry.channel, entry.message_ts)
        elif not payload.get("text") and not payload.get("blocks"):
            return 400, "no_text"
        elif as_flag(payload.get("replace_original")) and entry.message_ts:
            self.state.replace_message(entry.channel, entry.message_ts, payload)
        elif payload.get("response_type") == "in_channel" and entry.channel:
            target = self.state.find_channel(entry.channel)
            if target is not None:
                self.state.post_message(target, payload)
        else:
            self.state.add_ephemeral(entry.channel, entry.user_id, payload)
        entry.posts += 1
        return 200, "ok"
