"""A Prometheus named by the catalog: instant queries over its HTTP API (`/api/v1/query`).

Only the catalog's expressions are sent (users never pass PromQL). Each call is bounded by the
entry's timeout, and the answer by `MAX_ANSWER_BYTES`. Failures are translated here, and only
here, with bot/http_errors.py's rules: unreachable, timed out, a 5xx or an answer that is not
Prometheus' JSON is TargetUnavailable (or TargetTimeout), 401/403 TargetDenied, 404 (a wrong
URL) TargetNotFound, and any other 4xx (a catalog query Prometheus rejects) TargetMisconfigured.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from pydantic import BaseModel, ValidationError

from bot.catalog import PrometheusTarget
from bot.http_errors import UNREACHABLE, retry_of
from bot.targets.errors import (
    TargetDenied,
    TargetError,
    TargetMisconfigured,
    TargetNotFound,
    TargetTimeout,
    TargetUnavailable,
)

SYSTEM = "prometheus"
MAX_ANSWER_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Sample:
    """One series of an instant query's answer (a scalar has no labels)."""

    labels: dict[str, str]
    value: float

    @property
    def is_number(self) -> bool:
        return not math.isnan(self.value)


class _Answer(BaseModel):
    status: str
    data: dict[str, Any] | None = None
    errorType: str | None = None  # Prometheus' own field name
    error: str | None = None


class _Series(BaseModel):
    metric: dict[str, str] = {}
    value: tuple[float, str]


def _explanation(body: bytes) -> str:
    try:
        answer = _Answer.model_validate_json(body)
    except ValidationError:
        return ""
    return f"{answer.errorType or 'error'}: {answer.error}" if answer.error else ""


def translate_status(status: int, body: bytes, retry_after: str | None) -> TargetError:
    """A non-2xx answer as a TargetError (http_errors' rules say whether it is transient)."""
    explanation = _explanation(body)
    message = f"answered HTTP {status}" + (f" ({explanation[:300]})" if explanation else "")
    retryable, _ = retry_of(status, readable=bool(explanation), retry_after=retry_after)
    if retryable:
        return TargetUnavailable(SYSTEM, message)
    if status in (401, 403):
        return TargetDenied(SYSTEM, message)
    if status == 404:
        return TargetNotFound(SYSTEM, message + "; is the URL Prometheus' own?")
    return TargetMisconfigured(SYSTEM, message)


def parse_answer(body: bytes) -> list[Sample]:
    """The samples of a 2xx answer to an instant query (vector or scalar)."""
    try:
        answer = _Answer.model_validate_json(body)
    except ValidationError:
        raise TargetUnavailable(SYSTEM, "the answer is not Prometheus' JSON") from None
    if answer.status != "success" or answer.data is None:
        raise TargetMisconfigured(SYSTEM, f"{answer.errorType or 'error'}: {answer.error}")
    kind, result = answer.data.get("resultType"), answer.data.get("result")
    try:
        if kind == "vector" and isinstance(result, list):
            series = [_Series.model_validate(item) for item in result]
            return [Sample(s.metric, float(s.value[1])) for s in series]
        if kind == "scalar" and isinstance(result, list) and len(result) == 2:
            return [Sample({}, float(result[1]))]
    except (ValidationError, ValueError, TypeError):
        raise TargetUnavailable(SYSTEM, "the answer's samples are not numbers") from None
    raise TargetMisconfigured(
        SYSTEM, f"the query gives a {kind}, not an instant vector or a scalar"
    )


class PrometheusClient:
    """Instant queries on the catalogued Prometheus, each within the entry's timeout."""

    def __init__(
        self, target: PrometheusTarget, session: aiohttp.ClientSession | None = None
    ) -> None:
        self.target = target
        self._session = session

    def _headers(self) -> dict[str, str]:
        headers = {"User-Agent": "chatops-bot diagnose", "Accept": "application/json"}
        if self.target.token_env is not None:
            token = os.environ.get(self.target.token_env, "").strip()
            if not token:
                raise TargetMisconfigured(
                    SYSTEM, f"environment variable {self.target.token_env} is not set"
                )
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def query_many(self, exprs: Sequence[str]) -> list[list[Sample] | TargetError]:
        """The value of each expression now, asked concurrently over one session; each
        failure is returned in its place, translated, so one refused query costs no other."""
        owned = self._session is None
        session = self._session or aiohttp.ClientSession()
        try:
            return list(await asyncio.gather(*(self._answer(session, expr) for expr in exprs)))
        finally:
            if owned:
                await session.close()

    async def _answer(
        self, session: aiohttp.ClientSession, expr: str
    ) -> list[Sample] | TargetError:
        try:
            return await self._post(session, expr)
        except TargetError as exc:
            return exc

    async def _post(self, session: aiohttp.ClientSession, expr: str) -> list[Sample]:
        """One instant query, POSTed as a form so a long expression fits."""
        timeout = self.target.timeout.seconds
        url = self.target.url.rstrip("/") + "/api/v1/query"
        try:
            async with session.post(
                url,
                data={"query": expr, "timeout": f"{timeout:g}"},
                headers=self._headers(),
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as response:
                body = await response.content.read(MAX_ANSWER_BYTES + 1)
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except UNREACHABLE as exc:
            if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
                raise TargetTimeout(SYSTEM, f"no answer within {timeout:g} s (timed out)") from None
            raise TargetUnavailable(SYSTEM, f"cannot reach {url} ({type(exc).__name__})") from None
        if not 200 <= status < 300:
            raise translate_status(status, body, retry_after)
        if len(body) > MAX_ANSWER_BYTES:
            raise TargetMisconfigured(SYSTEM, "the answer is over 1 MiB: narrow the query")
        return parse_answer(body)
