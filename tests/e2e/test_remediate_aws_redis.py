"""AWS remediations on moto's server (a process, through AWS_ENDPOINT_URL) and Redis on a real
server, after another person's approval: the ECS desired count changed and a new deployment
forced, maxmemory-policy set; an expired request cannot be approved."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis

from tests import aws as moto
from tests.aws import FaultyAws, MotoServer
from tests.e2e.conftest import HarnessFactory
from tests.remediation_helpers import (
    APPROVER,
    audit_actions,
    click,
    final_update,
    finish,
    remediation_policy,
    request,
    request_id,
    thread_replies,
)

ECS = {"shop": {"aws": {"region": "eu-west-1", "ecs": {"cluster": "shop", "service": "checkout"}}}}


async def test_ecs_desired_count_and_a_forced_deployment(
    make_harness: HarnessFactory, aws_env: MotoServer
) -> None:
    moto.seed_ecs_service(aws_env, cluster="shop", service="checkout", desired=3)
    ecs = aws_env.client("ecs")
    harness = await make_harness("sqlite", policy=remediation_policy(ECS))

    answer, message = await request(harness, "ecs.set_desired_count shop 6")
    assert "It needs the approval of one person other than you." in answer  # not approver(s)
    assert message is not None
    assert "set ECS service shop/checkout desired count from 3 to 6" in str(message["blocks"])
    await click(harness, message, user=APPROVER)
    await finish(harness)
    [service] = ecs.describe_services(cluster="shop", services=["checkout"])["services"]
    assert service["desiredCount"] == 6
    assert "desired 6" in thread_replies(harness, message)[0]

    before = {d["id"] for d in service["deployments"]}
    _, message = await request(harness, "ecs.force_new_deployment shop")
    assert message is not None
    await click(harness, message, user=APPROVER)
    await finish(harness)
    [service] = ecs.describe_services(cluster="shop", services=["checkout"])["services"]
    new = {d["id"] for d in service["deployments"]} - before
    assert len(new) == 1
    [outcome] = thread_replies(harness, message)
    assert f"forced a new deployment ({new.pop()})" in outcome
    assert "Succeeded" in str(final_update(harness, message)["blocks"])


async def test_a_forced_deployment_approved_after_a_new_task_definition_leaves_it_alone(
    make_harness: HarnessFactory, aws_env: MotoServer
) -> None:
    # The approver saw checkout:1; a deploy moved the service to checkout:2 before the click.
    # Forcing then would have rolled out tasks of a definition nobody approved.
    moto.seed_ecs_service(aws_env, cluster="shop", service="checkout", desired=3)
    ecs = aws_env.client("ecs")
    harness = await make_harness("sqlite", policy=remediation_policy(ECS))
    _, message = await request(harness, "ecs.force_new_deployment shop")
    assert message is not None
    assert "with task definition checkout:1" in str(message["blocks"])
    ecs.register_task_definition(
        family="checkout",
        containerDefinitions=[{"name": "app", "image": "shop/checkout:2", "memory": 256}],
    )
    ecs.update_service(cluster="shop", service="checkout", taskDefinition="checkout:2")
    [service] = ecs.describe_services(cluster="shop", services=["checkout"])["services"]
    before = {d["id"] for d in service["deployments"]}

    await click(harness, message, user=APPROVER)
    await finish(harness)
    [service] = ecs.describe_services(cluster="shop", services=["checkout"])["services"]
    assert {d["id"] for d in service["deployments"]} == before
    [outcome] = thread_replies(harness, message)
    assert "moved from checkout:1 to checkout:2" in outcome
    assert "Failed" in str(final_update(harness, message)["blocks"])


@pytest.mark.redis
async def test_redis_policy_and_an_expired_request(
    make_harness: HarnessFactory, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CACHE_URL", redis_url)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.config_set("maxmemory-policy", "noeviction")
    policy = remediation_policy({"cache": {"redis": {"url_env": "CACHE_URL"}}})
    harness = await make_harness(
        "sqlite",
        policy=policy.model_copy(
            update={
                "remediation": policy.remediation.model_copy(
                    update={"expire_after": policy.remediation.expire_after.parse(1)}
                )
            }
        ),
    )
    try:
        _, expiring = await request(harness, "redis.set_maxmemory_policy cache allkeys-lru")
        assert expiring is not None
        assert "from noeviction to allkeys-lru" in str(expiring["blocks"])
        await asyncio.sleep(1.1)  # past its expiry (the reminder may not have fired yet)
        assert "expired before it was approved" in await click(harness, expiring, user=APPROVER)
        await harness.settle()
        assert "Expired" in str(final_update(harness, expiring)["blocks"])
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
        actions = await audit_actions(harness)
        assert ("remediation.expire", "chatops-bot", "ok") in actions
        assert any(
            a == "remediation.approve" and o.startswith("refused: Request #1 expired")
            for a, _, o in actions
        )
    finally:
        client.config_set("maxmemory-policy", "noeviction")
        client.close()


async def test_a_desired_count_set_then_unreadable_is_reported_as_set(
    make_harness: HarnessFactory, aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # UpdateService went through, the DescribeServices after it answered 500: the request
    # said "Failed" ("aws: ... 500") for a desired count that was changed.
    moto.seed_ecs_service(aws_env, cluster="shop", service="checkout", desired=3)
    proxy = FaultyAws(aws_env.url, fail="DescribeServices", after="UpdateService").start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        harness = await make_harness("sqlite", policy=remediation_policy(ECS))
        _, message = await request(harness, "ecs.set_desired_count shop 6")
        assert message is not None
        await click(harness, message, user=APPROVER)
        await finish(harness, request_id(message))
    finally:
        proxy.stop()
    assert proxy.failed >= 1  # the read back, as many times as botocore tries it
    [service] = aws_env.client("ecs").describe_services(cluster="shop", services=["checkout"])[
        "services"
    ]
    assert service["desiredCount"] == 6
    [outcome] = thread_replies(harness, message)
    assert "desired count 3 -&gt; 6" in outcome and "could not be read back" in outcome
    assert "Succeeded" in str(final_update(harness, message)["blocks"])
    assert ("remediation.outcome", "chatops-bot", "succeeded") in await audit_actions(harness)


async def test_a_request_whose_redis_left_the_catalog_entry_changes_nothing_and_says_so(
    make_harness: HarnessFactory, redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    # The bot restarted with a policy whose `cache` entry no longer names its Redis while a
    # request waited: approved, it ended "Failed: internal error (AssertionError)", with a
    # traceback in the log, instead of saying why nothing was changed.
    monkeypatch.setenv("CACHE_URL", redis_url)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.config_set("maxmemory-policy", "noeviction")
    url = f"sqlite:///{tmp_path}/shared.db"
    try:
        before = await make_harness(
            "sqlite",
            database_url=url,
            policy=remediation_policy({"cache": {"redis": {"url_env": "CACHE_URL"}}}),
        )
        _, message = await request(before, "redis.set_maxmemory_policy cache allkeys-lru")
        assert message is not None
        moved = remediation_policy({"cache": {"http": [{"url": "http://127.0.0.1:9/health"}]}})
        after = await make_harness("sqlite", database_url=url, policy=moved, double=before.double)
        await click(after, message, user=APPROVER)
        await finish(after, request_id(message))
        done = await after.services.remediation.get(request_id(message))
        assert done.status.value == "failed", done
        assert done.result["changed"] == "nothing changed", done.result
        assert "names no Redis for 'cache'" in done.result["after"], done.result
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    finally:
        client.config_set("maxmemory-policy", "noeviction")
        client.close()
