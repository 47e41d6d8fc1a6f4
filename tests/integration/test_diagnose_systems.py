"""Redis, AWS (moto's server), Kubernetes (the fake API server) and HTTP checks, each against
a real part over the network, through the same DiagnosticsService the bot uses."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
from aiohttp import web

from bot.diagnostics.findings import Grade
from tests import aws as moto
from tests.aws import MotoServer
from tests.diagnostics_helpers import diagnose, finding
from tests.fake_kubernetes import FakeKubernetes, deployment, event, node, pod, pod_metrics
from tests.local_http import serving
from tests.servers import RedisServer, free_port


@pytest.mark.redis
async def test_redis_at_a_small_maxmemory_evicts_and_measures_its_hit_ratio(
    redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = redis_server.client(0)
    client.config_set("maxmemory", "2mb")
    client.config_set("maxmemory-policy", "allkeys-lru")
    client.config_resetstat()
    try:
        value = "x" * 10_000
        for n in range(600):  # ~6 MB into 2 MB: the oldest keys are evicted
            client.set(f"page:{n}", value)
        # Read the newest 50 (mostly kept) and the oldest 150 (mostly evicted).
        found = [client.get(f"page:{n}") is not None for n in [*range(550, 600), *range(150)]]
        hits, misses = found.count(True), found.count(False)
        monkeypatch.setenv("CACHE_URL", redis_server.url_for(0))
        report = await diagnose(tmp_path, {"cache": {"redis": {"url_env": "CACHE_URL"}}}, "cache")
    finally:
        client.config_set("maxmemory", "0")
        client.flushall()
        client.close()
    evictions = finding(report, "redis.evictions")
    assert evictions.grade is Grade.WARN and evictions.facts["evicted"] > 0
    ratio = finding(report, "redis.hit_ratio")
    assert (ratio.facts["hits"], ratio.facts["misses"]) == (hits, misses)
    assert ratio.facts["ratio_pct"] == pytest.approx(100 * hits / (hits + misses))
    assert ratio.grade is Grade.WARN  # 50 hits of 200 lookups: under 80 %
    assert finding(report, "redis.memory").facts["policy"] == "allkeys-lru"
    assert "advice.warm_cache" in [s.action for s in report.suggestions]


async def test_aws_through_motos_server(aws_env: MotoServer, tmp_path: Path) -> None:
    moto.seed_ecs_service(aws_env, cluster="shop", service="checkout", desired=3)
    moto.seed_rds_instance(aws_env, "checkout-db")
    moto.seed_cpu(
        aws_env,
        namespace="AWS/ECS",
        dimensions={"ClusterName": "shop", "ServiceName": "checkout"},
        values=[40.0, 88.0, 97.5],
    )
    moto.seed_log_events(
        aws_env, "/ecs/checkout", ["INFO started", "ERROR db timeout after 30s", "ERROR retry"]
    )
    moto.seed_autoscaling_group(aws_env, "checkout-asg", desired=2)
    catalog = {
        "checkout": {
            "aws": {
                "region": moto.REGION,
                "ecs": {"cluster": "shop", "service": "checkout"},
                "rds": "checkout-db",
                "log_group": "/ecs/checkout",
                "autoscaling_group": "checkout-asg",
            }
        }
    }
    report = await diagnose(tmp_path, catalog, "checkout")
    ecs = finding(report, "aws.ecs")
    assert ecs.grade is Grade.CRIT and ecs.summary.startswith("0 of 3 tasks running")
    assert finding(report, "aws.rds").facts["status"] == "available"
    cpu = finding(report, "aws.cpu")
    assert cpu.grade is Grade.CRIT and cpu.facts["latest"] == 97.5
    logs = finding(report, "aws.logs")
    assert logs.grade is Grade.WARN and logs.evidence == (
        "ERROR db timeout after 30s",
        "ERROR retry",
    )
    asg = finding(report, "aws.autoscaling")
    assert asg.facts == {"group": "checkout-asg", "desired": 2, "in_service": 2, "max": 10}
    actions = [s.action for s in report.suggestions]
    assert actions[0] == "ecs.force_new_deployment"  # ECS below desired: a new deployment
    assert "autoscaling.set_desired_capacity" in actions  # CPU over its limit: scale out


async def test_an_unknown_rds_instance_is_crit_and_the_rest_still_graded(
    aws_env: MotoServer, tmp_path: Path
) -> None:
    moto.seed_rds_instance(aws_env, "real-db")
    catalog = {"svc": {"aws": {"region": moto.REGION, "rds": "missing-db"}}}
    report = await diagnose(tmp_path, catalog, "svc")
    rds = finding(report, "aws.rds")
    assert rds.grade is Grade.CRIT and "missing-db" in rds.summary


async def test_kubernetes_through_the_fake_api_server(
    fake_kubernetes: FakeKubernetes, tmp_path: Path
) -> None:
    state = fake_kubernetes.state
    state.add(deployment("checkout", namespace="shop", replicas=3, ready=1, updated=3))
    state.new_revision("shop", "checkout", "registry.example/checkout:2")  # revision 1 stays
    owner = state.replica_set_of("shop", "checkout")
    state.add(pod("checkout-7d9-a", namespace="shop", owner=owner, limits={"cpu": "500m"}))
    crashing = state.add(
        pod(
            "checkout-7d9-b",
            namespace="shop",
            owner=owner,
            ready=False,
            restarts=12,
            waiting_reason="CrashLoopBackOff",
            last_exit_code=1,
        )
    )
    state.set_log(
        "shop",
        "checkout-7d9-b",
        "booting\nERROR could not connect to postgres: connection refused\nexiting",
        previous=True,
    )
    state.add(deployment("other", namespace="shop", replicas=1, ready=0))
    other_rs = state.replica_set_of("shop", "other")
    state.add(pod("other-1", namespace="shop", owner=other_rs, ready=False))
    state.add(
        event(
            "checkout-7d9-b.1",
            namespace="shop",
            reason="BackOff",
            message="Back-off restarting failed container",
            about=crashing,
            count=9,
        )
    )
    state.add(node("node-1", conditions={"MemoryPressure": "True"}))
    state.add(node("node-2"))
    state.pod_metrics = {
        "shop": [pod_metrics("checkout-7d9-a", namespace="shop", cpu="490m", memory="100Mi")]
    }
    catalog = {
        "checkout": {
            "kubernetes": {"context": "test", "namespace": "shop", "deployments": ["checkout"]}
        }
    }
    report = await diagnose(tmp_path, catalog, "checkout")

    pods = finding(report, "kubernetes.pods")
    assert pods.grade is Grade.CRIT
    assert "1 in CrashLoopBackOff" in pods.summary and "other-1" not in "\n".join(pods.evidence)
    restarts = finding(report, "kubernetes.restarts")
    assert restarts.grade is Grade.CRIT and restarts.facts["max"] == 12
    log = finding(report, "kubernetes.logs")
    assert log.facts["previous"] is True
    assert log.evidence == (
        "checkout-7d9-b: ERROR could not connect to postgres: connection refused",
    )
    rollout = finding(report, "kubernetes.rollout")
    assert rollout.grade is Grade.WARN and rollout.summary.startswith("1/3 ready, 3 updated")
    events = finding(report, "kubernetes.events")
    assert events.grade is Grade.WARN and "BackOff ×9" in events.summary
    nodes = finding(report, "kubernetes.nodes")
    assert nodes.grade is Grade.WARN and "node-1: MemoryPressure" in nodes.summary
    cpu = finding(report, "kubernetes.cpu")
    assert cpu.grade is Grade.CRIT and cpu.facts["pct"] == pytest.approx(98)
    actions = [s.action for s in report.suggestions]
    assert actions[:2] == ["kubernetes.restart", "kubernetes.rollback"]
    assert "kubernetes.scale" in actions
    # The fence: only the catalogued namespace (and the cluster's nodes) were read.
    for path in fake_kubernetes.paths_requested():
        assert "/namespaces/shop/" in path or path == "/api/v1/nodes", path


async def test_a_cluster_with_no_ready_node_is_critical_not_ok(
    fake_kubernetes: FakeKubernetes, tmp_path: Path
) -> None:
    # No node at all was graded OK ("0 nodes Ready, no pressure"): nothing can run there.
    fake_kubernetes.state.add(deployment("api", namespace="default", replicas=1, ready=0))
    catalog = {"api": {"kubernetes": {"context": "test", "deployments": ["api"]}}}
    report = await diagnose(tmp_path, catalog, "api", checks=("kubernetes.nodes",))
    nodes = finding(report, "kubernetes.nodes")
    assert nodes.grade is Grade.CRIT and "no nodes" in nodes.summary

    # A node that reports no readiness at all is not counted as Ready either.
    silent = node("node-9")
    silent["status"]["conditions"] = []
    fake_kubernetes.state.add(silent)
    report = await diagnose(tmp_path, catalog, "api", checks=("kubernetes.nodes",))
    nodes = finding(report, "kubernetes.nodes")
    assert nodes.grade is Grade.CRIT and "node-9: not Ready" in nodes.summary
    assert "on 1 node:" in nodes.summary


async def test_kubernetes_without_the_metrics_api_is_a_note(
    fake_kubernetes: FakeKubernetes, tmp_path: Path
) -> None:
    fake_kubernetes.state.add(deployment("api", namespace="default", replicas=1, ready=1))
    fake_kubernetes.state.add(pod("api-1", labels={"app": "api"}))
    catalog = {"api": {"kubernetes": {"context": "test", "deployments": ["api"]}}}
    report = await diagnose(tmp_path, catalog, "api", checks=("kubernetes.usage",))
    usage = finding(report, "kubernetes.usage")
    assert usage.grade is Grade.OK and "metrics API is not installed" in usage.summary


@pytest.fixture
async def silent_socket() -> AsyncIterator[str]:
    """A TCP server that accepts connections and never answers a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    loop = asyncio.get_running_loop()

    async def accept() -> None:
        while True:
            conn, _ = await loop.sock_accept(server)
            accepted.append(conn)

    server.setblocking(False)
    task = asyncio.create_task(accept())
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/health"
    finally:
        task.cancel()
        for conn in accepted:
            conn.close()
        server.close()


@pytest.fixture
async def healthy_endpoint() -> AsyncIterator[str]:
    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def broken(_request: web.Request) -> web.Response:
        return web.Response(status=502, text="bad gateway")

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/broken", broken)
    async with serving(app) as url:
        yield url


async def test_an_endpoint_that_never_answers_is_crit_and_the_others_unaffected(
    silent_socket: str, healthy_endpoint: str, tmp_path: Path
) -> None:
    catalog = {
        "web": {
            "http": [
                {"url": silent_socket, "timeout": 1},
                {"url": f"{healthy_endpoint}/health"},
                {"url": f"{healthy_endpoint}/broken"},
            ]
        }
    }
    report = await diagnose(tmp_path, catalog, "web")
    by_url = {f.facts["url"]: f for f in report.findings}
    hung = by_url[silent_socket]
    assert hung.grade is Grade.CRIT and hung.summary == "no answer within 1 s (timed out)"
    assert by_url[f"{healthy_endpoint}/health"].grade is Grade.OK
    broken = by_url[f"{healthy_endpoint}/broken"]
    assert broken.grade is Grade.CRIT and "HTTP 502" in broken.summary
    assert report.suggestions[-1].action == "advice.check_network"


async def test_a_redis_that_refuses_is_crit_with_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()  # nobody listens there
    monkeypatch.setenv("GONE_URL", f"redis://:s3cretpass@127.0.0.1:{port}/0")
    report = await diagnose(
        tmp_path, {"gone": {"redis": {"url_env": "GONE_URL", "timeout": 1}}}, "gone"
    )
    assert report.grade is Grade.CRIT and report.findings[0].summary.startswith("unreachable")
    assert "s3cretpass" not in repr(report)
    assert redis  # the client library the adapter translated from


@pytest.mark.parametrize(
    "url",
    ["redis://:s3cretpass@127.0.0.1:notaport/0", "mongo://x"],
)
async def test_a_malformed_redis_url_is_a_crit_naming_the_entry_not_a_traceback(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Issue 15: redis-py's ValueError ("Port could not be cast...") was logged as an ERROR
    # traceback and shown in Slack as the finding.
    monkeypatch.setenv("BROKEN_URL", url)
    report = await diagnose(
        tmp_path, {"broken": {"redis": {"url_env": "BROKEN_URL", "timeout": 1}}}, "broken"
    )
    summary = report.findings[0].summary
    assert report.grade is Grade.CRIT
    assert summary.startswith("misconfigured in the catalog:") and "BROKEN_URL" in summary
    assert "ValueError" not in summary and "s3cretpass" not in repr(report)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
