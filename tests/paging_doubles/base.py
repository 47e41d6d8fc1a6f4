"""Serving on loopback, injected failures and waiting: shared by both doubles."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass
class Answer:
    """An injected answer: `status` for the next `times` requests (Retry-After optional)."""

    status: int
    times: int = 1
    retry_after: int | None = None


class _Double:
    """Serving on loopback, failure injection and waiting, shared by both doubles."""

    name = "double"

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.refused: list[tuple[int, dict[str, Any]]] = []
        self.seen = 0  # requests received, answered or not
        self.paths: list[str] = []  # every request's method, path and query, routed or not
        self._inject: deque[Answer] = deque()
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Event()
        self._answering = asyncio.Event()
        self._answering.set()
        self.url = ""

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.paths.append(f"{request.method} {request.raw_path}")
        self._changed.set()
        await self._answering.wait()  # a hanging service: the connection stays open, silent
        return await handler(request)

    def hang(self) -> None:
        """Accept requests and answer none of them until `answer_again` (an outage where the
        provider's load balancer still takes connections)."""
        self._answering.clear()

    def answer_again(self) -> None:
        self._answering.set()

    async def start(self) -> None:
        app = web.Application(middlewares=[self._record])
        app.add_routes(self.routes())
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def stop(self) -> None:
        self._answering.set()  # held requests end before the server does
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def fail_next(self, *answers: Answer) -> None:
        """Answer the next requests with these statuses (a rate limit, an outage...)."""
        self._inject.extend(answers)

    def _injected(self) -> web.Response | None:
        self.seen += 1
        self._changed.set()
        while self._inject and self._inject[0].times <= 0:
            self._inject.popleft()
        if not self._inject:
            return None
        answer = self._inject[0]
        answer.times -= 1
        headers = {"Retry-After": str(answer.retry_after)} if answer.retry_after else {}
        body = self._failure_body(answer.status)
        self.refused.append((answer.status, body))
        return web.json_response(body, status=answer.status, headers=headers)

    def _failure_body(self, status: int) -> dict[str, Any]:
        return {"message": "Internal Server Error" if status >= 500 else "Too many requests"}

    def _refuse(self, status: int, body: dict[str, Any]) -> web.Response:
        self.refused.append((status, body))
        self.violations.append(f"{self.name} {status}: {json.dumps(body)[:300]}")
        self._changed.set()
        return web.json_response(body, status=status)

    async def wait_until(self, check: Any, timeout: float = 10.0, what: str = "") -> None:
        """Wait until `check()` is true; fails the test after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not check():
            remaining = deadline - loop.time()
            assert remaining > 0, f"{self.name}: timed out waiting for {what or check}"
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 0.2))
            except TimeoutError:
                pass


async def _json_object(request: web.Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.read() or b"null")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
