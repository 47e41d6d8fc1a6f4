"""Sign and send Slack's HTTP requests into the app: the v0 signature, the headers Slack sends
with a body, and a sender that posts them (bot.slack.requests builds the bodies).

    async with SlackRequestSender(app_url, signing_secret) as sender:
        status, answer = await sender.send(*body)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import aiohttp

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


class SlackRequestBody(NamedTuple):
    """A request body and its content type; unpacks as `body, content_type`."""

    body: str
    content_type: str


# ----- signing ---------------------------------------------------------------------------


def sign(signing_secret: str, body: str | bytes, timestamp: int) -> str:
    """Slack's v0 request signature: "v0=" + hex HMAC-SHA256 of "v0:{timestamp}:{body}".

    Slack signs the bytes it sends; a str body is signed as its UTF-8 encoding."""
    raw = body.encode() if isinstance(body, str) else body
    base = f"v0:{timestamp}:".encode() + raw
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    signing_secret: str,
    body: str | bytes,
    timestamp: int | None = None,
    retry_num: int | None = None,
    retry_reason: str = "http_timeout",
    content_type: str = FORM,
) -> dict[str, str]:
    """Headers Slack sends with `body`; retry headers only when `retry_num` is given."""
    ts = int(time.time()) if timestamp is None else timestamp
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": sign(signing_secret, body, ts),
    }
    if retry_num is not None:
        # Slack redelivers events it thinks failed; apps should not redo the work.
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = retry_reason
    return headers


# ----- sending ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AppResponse:
    """The app's answer; unpacks as `status, body` (body: parsed JSON, else text)."""

    status: int
    body: Any
    headers: Mapping[str, str]

    def __iter__(self) -> Iterator[Any]:
        yield self.status
        yield self.body


class SlackRequestSender:
    """Posts signed requests to the app's endpoint (e.g. http://127.0.0.1:PORT/slack/events)."""

    def __init__(
        self,
        url: str,
        signing_secret: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.signing_secret = signing_secret
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def __aenter__(self) -> SlackRequestSender:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session if this sender created it."""
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    async def send(
        self,
        body: str | bytes | SlackRequestBody,
        content_type: str | None = None,
        *,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
        timestamp: int | None = None,
        signature: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AppResponse:
        """Sign and POST `body`; `timestamp`/`signature` override them to test rejection.

        `body` may be bytes (to send what no UTF-8 string holds); `headers` are sent as given,
        over the signed ones (a timestamp like `abc`, a content type that lies).
        """
        if isinstance(body, SlackRequestBody):
            content_type = content_type or body.content_type
            body = body.body
        sent = signed_headers(
            self.signing_secret,
            body,
            timestamp=timestamp,
            retry_num=retry_num,
            retry_reason=retry_reason,
            content_type=content_type or FORM,
        )
        if signature is not None:
            sent["X-Slack-Signature"] = signature
        sent.update(headers or {})
        data = body.encode() if isinstance(body, str) else body
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        async with self._session.post(self.url, data=data, headers=sent) as response:
            text = await response.text()
            answer: Any = text
            if response.content_type == JSON and text:
                answer = json.loads(text)
            return AppResponse(response.status, answer, dict(response.headers))
