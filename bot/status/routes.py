"""GET /status, /status.json and /status/feed.atom on the bot's HTTP server (bot.server).

Public and read-only: no signature, no session. Every answer carries `Cache-Control: public`
and an ETag; a request whose If-None-Match holds it gets a 304 with no body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.errors import StoreError
from bot.status.page import Built, Document, StatusPage

UNAVAILABLE = "The status page cannot be shown right now. Try again in a minute."
# No script, no frames, nothing fetched from elsewhere: the page's own inline style only.
_SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "Referrer-Policy": "no-referrer",
}


def _matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110's weak comparison over a list of tags (or `*`)."""
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


def status_routes(page: StatusPage) -> list[web.RouteDef]:
    def handler(
        pick: Callable[[Built], Document],
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def serve(request: web.Request) -> web.Response:
            try:
                built = await page.current()
            except StoreError:
                return web.Response(
                    status=503, text=UNAVAILABLE, headers={"Retry-After": "30", **_SECURITY}
                )
            document = pick(built)
            headers = {
                "Cache-Control": f"public, max-age={page.max_age}",
                "ETag": document.etag,
                "Last-Modified": document.last_modified,
                **_SECURITY,
            }
            if _matches(request.headers.get("If-None-Match", ""), document.etag):
                return web.Response(status=304, headers=headers)
            return web.Response(
                body=document.body, headers={**headers, "Content-Type": document.content_type}
            )

        return serve

    return [
        web.get("/status", handler(lambda built: built.html)),
        web.get("/status.json", handler(lambda built: built.json)),
        web.get("/status/feed.atom", handler(lambda built: built.atom)),
    ]
