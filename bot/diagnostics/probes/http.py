"""HTTP: status and latency of each catalogued endpoint against `response_ms`."""

from __future__ import annotations

from bot.catalog import HttpCheck, Thresholds
from bot.diagnostics.findings import Check, Finding, Grade
from bot.diagnostics.grading import describe_above, grade_above
from bot.targets.errors import TargetTimeout
from bot.targets.http import HttpClient


def checks(endpoints: list[HttpCheck], thresholds: Thresholds, client: HttpClient) -> list[Check]:
    return [_endpoint_check(endpoint, thresholds, client) for endpoint in endpoints]


def _endpoint_check(endpoint: HttpCheck, thresholds: Thresholds, client: HttpClient) -> Check:
    name = f"http {endpoint.url}"
    band = thresholds.response_ms
    limit = describe_above(band, " ms")

    async def run() -> list[Finding]:
        try:
            answer = await client.get(endpoint)
        except TargetTimeout:
            timeout = endpoint.timeout.seconds
            return [
                Finding(
                    "http",
                    endpoint.url,
                    Grade.CRIT,
                    f"no answer within {timeout:g} s (timed out)",
                    threshold=limit,
                    facts={"url": endpoint.url, "timed_out": True, "latency_ms": timeout * 1000},
                )
            ]
        latency = answer.latency_ms
        facts = {"url": endpoint.url, "status": answer.status, "latency_ms": latency}
        if answer.status != endpoint.expect_status:
            return [
                Finding(
                    "http",
                    endpoint.url,
                    Grade.CRIT,
                    f"HTTP {answer.status} (expected {endpoint.expect_status}) in {latency:.0f} ms",
                    threshold=f"status {endpoint.expect_status}",
                    evidence=(f"GET {endpoint.url} -> {answer.status}: {answer.body_excerpt}",),
                    facts=facts | {"failed": True},
                )
            ]
        return [
            Finding(
                "http",
                endpoint.url,
                grade_above(latency, band),
                f"HTTP {answer.status} in {latency:.0f} ms",
                threshold=limit,
                facts=facts,
            )
        ]

    return Check(name, "http", endpoint.url, endpoint.timeout.seconds + 0.5, run)
