"""Prometheus as a diagnostic system, against Debian's real Prometheus: it scrapes a metrics
endpoint this test serves with aiohttp (and a target nobody serves), evaluates an alerting
rule, and `/diagnose` grades the catalog's queries, the targets down and the alerts firing.
A Prometheus that cannot be reached, hangs, or answers 500 or garbage is a CRIT finding."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from slack_sdk.models.blocks import Block

from bot.diagnostics.findings import Grade
from bot.diagnostics.probes.prometheus import MAX_LINES
from bot.slack.diagnosis_blocks import evidence_messages
from tests.diagnostics_helpers import diagnose, finding
from tests.monitoring import PrometheusServer, serving_text
from tests.processes import bound_port
from tests.servers import free_port
from tests.waiting import until

QUEUES = 15  # more series than the evidence shows

METRICS = (
    "# TYPE shop_p99_latency_seconds gauge\n"
    "shop_p99_latency_seconds 0.62\n"
    "# TYPE shop_error_rate_pct gauge\n"
    "shop_error_rate_pct 7.5\n"
    "# TYPE shop_cache_hit_ratio_pct gauge\n"
    "shop_cache_hit_ratio_pct 93\n"
    "# TYPE shop_queue_depth gauge\n"
    + "".join(f'shop_queue_depth{{queue="q{n:02d}"}} {n}\n' for n in range(QUEUES))
)

RULES = [
    {
        "name": "shop",
        "rules": [
            {
                "alert": "ShopLatencyHigh",
                "expr": "shop_p99_latency_seconds > 0.5",
                "labels": {"severity": "critical"},
                "annotations": {"summary": "shop p99 over 500 ms"},
            }
        ],
    }
]


@asynccontextmanager
async def serving(
    handler: Callable[[web.Request], Any], path: str = "/{tail:.*}"
) -> AsyncIterator[int]:
    """An aiohttp server on a free loopback port answering every request with `handler`."""
    app = web.Application()
    app.router.add_route("*", path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)  # port 0: none picked first and taken meanwhile
    await site.start()
    try:
        yield bound_port(site)
    finally:
        await runner.cleanup()


@asynccontextmanager
async def scraped_shop() -> AsyncIterator[PrometheusServer]:
    """Prometheus scraping the shop (up) and a second shop target nobody serves (down),
    once both have been scraped and the latency alert fires."""
    with serving_text({"/metrics": lambda: METRICS}) as port:
        scrape = [
            {
                "job_name": "shop",
                # A scrape times out after its interval: 1 s, not the global 200 ms, so a
                # busy machine does not read the shop as down.
                "scrape_interval": "1s",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{port}"], "labels": {"service": "shop"}}
                ],
            },
            {
                "job_name": "shop-worker",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{free_port()}"], "labels": {"service": "shop"}}
                ],
            },
        ]
        server = await asyncio.to_thread(PrometheusServer.scraping(scrape, RULES).start)
        try:

            def ready() -> bool:
                up = {s["metric"]["job"]: s["value"][1] for s in server.query("up")}
                firing = server.query('ALERTS{alertstate="firing"}')
                return up == {"shop": "1", "shop-worker": "0"} and bool(firing)

            await until(lambda: asyncio.to_thread(ready), "both targets scraped, alert firing", 30)
            yield server
        finally:
            await asyncio.to_thread(server.stop)


def _catalog(url: str, **extra: Any) -> dict[str, Any]:
    queries = [
        {
            "name": "latency_ms",
            "expr": "shop_p99_latency_seconds * 1000",
            "warn": 500,
            "crit": 1000,
            "unit": "ms",
        },
        {
            "name": "error_rate_pct",
            "expr": "shop_error_rate_pct",
            "warn": 1,
            "crit": 5,
            "unit": "%",
        },
        {
            "name": "cache_hit_pct",
            "expr": "shop_cache_hit_ratio_pct",
            "warn": 80,
            "lower_is_worse": True,
        },
        {"name": "queue_depth", "expr": "shop_queue_depth", "warn": 20, "crit": 50},
        {"name": "orders", "expr": "shop_orders_total", "warn": 1},
        {"name": "broken", "expr": "rate(shop_error_rate_pct[", "warn": 1},
    ]
    return {"shop": {"prometheus": {"url": url, "queries": queries, **extra}}}


async def test_queries_targets_and_alerts_graded_against_a_real_prometheus(
    tmp_path: Path,
) -> None:
    async with scraped_shop() as server:
        report = await diagnose(tmp_path, _catalog(server.url), "shop")
        by_job = await diagnose(
            tmp_path, _catalog(server.url, selector='{job="shop"}'), "shop", ("prometheus",)
        )

    latency = finding(report, "prometheus.latency_ms")
    assert (latency.grade, latency.facts["value"]) == (Grade.WARN, pytest.approx(620))
    assert latency.summary == "620 ms" and latency.threshold == "warn > 500 ms, crit > 1000 ms"
    errors = finding(report, "prometheus.error_rate_pct")
    assert (errors.grade, errors.facts["value"]) == (Grade.CRIT, 7.5)
    assert finding(report, "prometheus.cache_hit_pct").grade is Grade.OK  # 93 % is not < 80 %
    # Fifteen series: the worst grades the query, the evidence shows ten and counts the rest.
    queues = finding(report, "prometheus.queue_depth")
    assert queues.grade is Grade.OK and queues.facts == {"value": 14.0, "series": QUEUES}
    assert queues.evidence[0].startswith('14 {__name__="shop_queue_depth"')
    assert len(queues.evidence) == MAX_LINES + 1
    assert queues.evidence[-1] == f"… and {QUEUES - MAX_LINES} more"
    missing = finding(report, "prometheus.orders")
    assert (missing.grade, missing.summary) == (
        Grade.WARN,
        "no data (the query returned no series)",
    )
    # A query Prometheus rejects is that query's CRIT; the other findings still stand.
    broken = finding(report, "prometheus.broken")
    assert (
        broken.grade is Grade.CRIT and "HTTP 400" in broken.summary and "bad_data" in broken.summary
    )

    # Default selector {service="shop"}: both jobs; the worker nobody serves is down.
    targets = finding(report, "prometheus.targets")
    assert (targets.grade, targets.facts["total"]) == (Grade.WARN, 2)
    assert targets.summary.startswith("1 of 2 down") and 'job="shop-worker"' in targets.evidence[0]
    alerts = finding(report, "prometheus.alerts")
    assert (alerts.grade, alerts.facts["firing"]) == (Grade.CRIT, ["ShopLatencyHigh"])
    assert (
        alerts.summary == "1 firing: ShopLatencyHigh"
        and 'severity="critical"' in alerts.evidence[0]
    )

    # A selector of its own: only the job that is up, and the alert carries its job label.
    assert finding(by_job, "prometheus.targets").summary == "1 up"
    assert finding(by_job, "prometheus.alerts").facts["firing"] == ["ShopLatencyHigh"]
    assert {run.system for run in by_job.runs} == {"prometheus"}

    # The evidence reaches the thread within Slack's limits.
    for _text, blocks in evidence_messages(report):
        assert len(blocks) <= 50
        for block in blocks:
            parsed = Block.parse(block)
            assert parsed is not None
            parsed.validate_json()  # raises beyond Slack's limits (3000 characters a text)


async def test_an_unreachable_prometheus_is_one_crit(tmp_path: Path) -> None:
    report = await diagnose(tmp_path, _catalog(f"http://127.0.0.1:{free_port()}"), "shop")
    failed = finding(report, "prometheus")
    assert failed.grade is Grade.CRIT and failed.summary.startswith("unreachable: cannot reach")
    assert report.findings == [failed]


async def test_a_prometheus_that_never_answers_times_out(tmp_path: Path) -> None:
    answered = asyncio.Event()

    async def hang(_request: web.Request) -> web.Response:
        await answered.wait()
        return web.Response(text="late")

    async with serving(hang) as port:
        catalog = _catalog(f"http://127.0.0.1:{port}", timeout=0.3)
        report = await diagnose(tmp_path, catalog, "shop")
        answered.set()
    failed = finding(report, "prometheus")
    assert failed.grade is Grade.CRIT and "within 0.3 s (timed out)" in failed.summary


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            500,
            '{"status":"error","errorType":"internal","error":"boom"}',
            "HTTP 500 (internal: boom)",
        ),
        (503, "<html>upstream down</html>", "answered HTTP 503"),
        (200, "<html>a proxy's login page</html>", "not Prometheus' JSON"),
        (401, "Unauthorized", "answered HTTP 401"),
    ],
)
async def test_a_failing_or_garbled_answer_is_crit(
    tmp_path: Path, status: int, body: str, expected: str
) -> None:
    async def answer(_request: web.Request) -> web.Response:
        return web.Response(status=status, text=body)

    async with serving(answer) as port:
        report = await diagnose(tmp_path, _catalog(f"http://127.0.0.1:{port}"), "shop")
    failed = finding(report, "prometheus")
    assert failed.grade is Grade.CRIT and expected in failed.summary


async def test_the_bearer_token_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str | None] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        data = {"resultType": "vector", "result": []}
        return web.json_response({"status": "success", "data": data})

    monkeypatch.setenv("PROM_TOKEN", "s3cret-token")
    async with serving(answer) as port:
        catalog = {
            "shop": {"prometheus": {"url": f"http://127.0.0.1:{port}", "token_env": "PROM_TOKEN"}}
        }
        report = await diagnose(tmp_path, catalog, "shop")
    assert set(seen) == {"Bearer s3cret-token"}
    targets = finding(report, "prometheus.targets")
    assert targets.grade is Grade.WARN
    assert targets.summary == 'no scrape targets match {service="shop"}'
    assert finding(report, "prometheus.alerts").summary == "none firing"
