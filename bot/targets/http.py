"""HTTP endpoints named by the catalog: one GET each, timed, with the entry's timeout."""

from __future__ import annotations

import time
from dataclasses import dataclass

import aiohttp

from bot.catalog import HttpCheck
from bot.http_errors import UNREACHABLE
from bot.targets.errors import TargetError, TargetTimeout, TargetUnavailable

SYSTEM = "http"
BODY_EXCERPT = 300


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    latency_ms: float
    body_excerpt: str


def translate(exc: BaseException, timeout: float) -> TargetError:
    if isinstance(exc, TargetError):
        return exc
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return TargetTimeout(SYSTEM, f"no answer within {timeout:g} s")
    return TargetUnavailable(SYSTEM, f"{type(exc).__name__}: {exc}")


class HttpClient:
    """GET the catalogued endpoints; redirects are not followed (they may leave the fence)."""

    def __init__(self, session: aiohttp.ClientSession | None = None) -> None:
        self._session = session

    async def get(self, check: HttpCheck) -> HttpAnswer:
        timeout = check.timeout.seconds
        owned = self._session is None
        session = self._session or aiohttp.ClientSession()
        started = time.perf_counter()
        try:
            async with session.get(
                check.url,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
                headers={"User-Agent": "chatops-bot diagnose"},
            ) as response:
                body = await response.content.read(BODY_EXCERPT)
                latency_ms = (time.perf_counter() - started) * 1000
                return HttpAnswer(
                    response.status, latency_ms, body.decode("utf-8", errors="replace")
                )
        except UNREACHABLE as exc:
            raise translate(exc, timeout) from None
        finally:
            if owned:
                await session.close()
