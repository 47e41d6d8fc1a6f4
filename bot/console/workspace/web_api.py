"""The Slack double's Web API over HTTP: tokens, payload checks, faults, then the workspace.

Also the upload URLs of the files v2 flow, where clients POST a file's bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from bot.console.workspace.checks import (
    OpenApiChecker,
    check_markup,
    check_message,
    check_view,
)
from bot.console.workspace.documented import check_documented
from bot.console.workspace.faults import Faults, Injection, rate_limited_answer
from bot.console.workspace.limits import Outage, RateLimiter
from bot.console.workspace.recording import RecordedCall
from bot.console.workspace.socket_mode import SocketMode
from bot.console.workspace.state import ApiError, WorkspaceState

# Fields slack_sdk JSON-encodes into form bodies (e.g. `blocks=[...]` as a string).
_JSON_FIELDS = ("blocks", "attachments", "view", "files", "metadata")
_MESSAGE_METHODS = {"chat.postMessage", "chat.postEphemeral", "chat.update", "chat.scheduleMessage"}
_VIEW_METHODS = {"views.open", "views.update", "views.push", "views.publish"}


class WebApi(SocketMode, Faults):
    """SlackDouble's /api/{method} and /upload/v1/{file_id} handlers."""

    bot_token: str
    app_token: str
    state: WorkspaceState
    calls: list[RecordedCall]
    violations: list[str]
    rate_limiter: RateLimiter | None
    _clock: Callable[[], float]
    _openapi: OpenApiChecker | None
    _outage: Outage | None

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _read_params(request)
        header_token = _bearer(request.headers.get("Authorization", ""))
        body_token = params.pop("token", None)
        call = RecordedCall(method=method, params=params, time=self._clock())
        response, injection = self._answer(method, params, header_token or body_token, header_token)
        lose = injection is not None and injection.kind == "lose_reply"
        call.http_status = response.status
        call.response = _recorded_body(response)
        call.reply_lost = lose
        self.calls.append(call)
        await self._emit(call)
        if lose and request.transport is not None:
            request.transport.abort()  # the work is done; the answer never arrives
        if injection is not None and injection.kind == "hold_reply":
            await injection.gate.wait()  # done and recorded; answered when the test says
        return response

    def _answer(
        self, method: str, params: dict[str, Any], token: str | None, header_token: str | None
    ) -> tuple[web.Response, Injection | None]:
        """The answer to a call, and the fault that delays or loses its reply, if any."""
        injection = None
        response = self._respond(method, params, token, header_token)
        if isinstance(response, Injection):
            injection, response = response, self._carry_out(method, params)
        return response, injection

    def _respond(
        self, method: str, params: dict[str, Any], token: str | None, header_token: str | None
    ) -> web.Response | Injection:
        auth_error = self._auth_error(method, token, header_token)
        if auth_error:
            return web.json_response({"ok": False, "error": auth_error})
        if self._openapi is not None:
            self.violations.extend(self._openapi.check(method, params))
        self.violations.extend(check_documented(method, params))  # newer than the spec
        problems = self._payload_problems(method, params)
        self.violations.extend(f"{method}: {p}" for p in problems)
        if method in _MESSAGE_METHODS or method in _VIEW_METHODS:
            self.violations.extend(f"{method}: {p}" for p in check_markup(params))
        if self._outage is not None and self._outage.active():
            if self._outage.next_status() == 429:
                return rate_limited_answer(self._outage.retry_after)
            return web.json_response({"ok": False, "error": "internal_error"}, status=500)
        if self.rate_limiter is not None:
            wait = self.rate_limiter.retry_after(method, params)
            if wait is not None:
                return rate_limited_answer(wait)
        injection = self._take_injection(method, params)
        if injection is not None and injection.kind in ("lose_reply", "hold_reply"):
            return injection
        if injection is not None:
            return self._injected_answer(injection)
        if problems:
            return web.json_response({"ok": False, "error": "invalid_blocks"})
        return self._carry_out(method, params)

    def _carry_out(self, method: str, params: dict[str, Any]) -> web.Response:
        try:
            if method == "apps.connections.open":
                return web.json_response(self._open_connection())
            return web.json_response(self.state.call(method, params))
        except ApiError as exc:
            return web.json_response(exc.body())

    def _auth_error(self, method: str, token: str | None, header_token: str | None) -> str | None:
        if method == "apps.connections.open":
            # Slack takes the app token from the Authorization header only.
            token, expected = header_token, self.app_token
        else:
            expected = self.bot_token
        if not token:
            return "not_authed"
        if token == expected:
            return None
        if token in (self.bot_token, self.app_token):
            return "not_allowed_token_type"
        return "invalid_auth"

    @staticmethod
    def _payload_problems(method: str, params: Mapping[str, Any]) -> list[str]:
        if method in _MESSAGE_METHODS:
            return check_message(params)
        if method in _VIEW_METHODS and "view" in params:
            return check_view(params["view"])
        return []

    async def _handle_upload(self, request: web.Request) -> web.Response:
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            part = next((v for v in form.values() if hasattr(v, "file")), None)
            content = part.file.read() if part is not None else b""
        else:
            content = await request.read()
        if not self.state.receive_upload(request.match_info["file_id"], content):
            return web.Response(status=404, text="file_not_found")
        return web.Response(text=f"OK - {len(content)}")  # what files.slack.com answers


def _recorded_body(response: web.Response) -> dict[str, Any]:
    """The JSON object answered, or {} for anything else (a scripted text or broken body)."""
    if not response.content_type.endswith("json") or response.text is None:
        return {}
    try:
        body = json.loads(response.text)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _bearer(header: str) -> str | None:
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Query string + form or JSON body, as Slack merges them; JSON-string fields decoded."""
    params: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                body = None
            if isinstance(body, dict):
                params.update(body)
        else:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
    for key in _JSON_FIELDS:
        value = params.get(key)
        if isinstance(value, str) and value[:1] in ("[", "{"):
            try:
                params[key] = json.loads(value)
            except ValueError:
                pass  # left as a string: the payload checks report it
    return params
