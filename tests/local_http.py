"""An aiohttp application served on a free loopback port, for the tests' small stand-ins
(health endpoints, a provider answering odd bodies)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from tests.processes import bound_port


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """`app` served on 127.0.0.1 and a port the system picks: its base URL
    (`http://127.0.0.1:PORT`) until the block ends."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{bound_port(site)}"
    finally:
        await runner.cleanup()
