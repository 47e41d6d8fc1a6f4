"""A slow HTTP health endpoint for the diagnosis tests: it answers only once the test lets it,
so runs overlap (tests/e2e/test_diagnose_single_flight.py, test_diagnose_replicas.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from tests.local_http import serving


@dataclass
class SlowEndpoint:
    """An HTTP health endpoint that answers only once `gate` is set; counts its requests."""

    url: str
    gate: asyncio.Event
    hits: list[str] = field(default_factory=list)


@pytest.fixture
async def slow_endpoint() -> AsyncIterator[SlowEndpoint]:
    endpoint = SlowEndpoint(url="", gate=asyncio.Event())

    async def health(request: web.Request) -> web.Response:
        endpoint.hits.append(request.path)
        await endpoint.gate.wait()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/ready", health)
    async with serving(app) as url:
        endpoint.url = f"{url}/health"
        try:
            yield endpoint
        finally:
            endpoint.gate.set()
