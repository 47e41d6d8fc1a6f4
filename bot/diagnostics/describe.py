"""What a suggestion's button would do, said again from the catalog when it is clicked."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from bot.catalog import Service
from bot.durations import humanize_seconds

# What comes back in a button's value is checked before it is repeated to anyone.
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_QUANTITY = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,6})?(Ki|Mi|Gi|Ti|k|M|G|T)?$")


def listed(pids: Sequence[int]) -> str:
    """`pid 42`, `pids 42, 43` (eight at most shown)."""
    shown = ", ".join(map(str, pids[:8]))
    return f"pid {shown}" if len(pids) == 1 else f"pids {shown}" + (" ..." if len(pids) > 8 else "")


def describe(service: str, entry: Service, action: str, params: dict[str, Any]) -> str | None:
    """What a suggestion's button would do, re-derived from the catalog (None: unknown).

    A button's value comes back from Slack, so it is never trusted to say what it does.
    """
    k8s = entry.kubernetes
    deployment = str(params.get("deployment", ""))
    if action.startswith("kubernetes."):
        if k8s is None or (k8s.deployments and deployment not in k8s.deployments):
            return None
        where = f"{k8s.namespace}/{deployment}"
        return {
            "kubernetes.restart": f"rollout restart of deployment {where}",
            "kubernetes.rollback": f"roll deployment {where} back to its previous revision",
            "kubernetes.scale": f"scale deployment {where} to {int(params.get('replicas', 0))}"
            f" replicas (catalog maximum {k8s.max_replicas})",
        }.get(action)
    if action.startswith("postgres.") and entry.postgres is not None:
        if action == "postgres.terminate_backend":
            return f"pg_terminate_backend({int(params.get('pid', 0))}) on {service}'s database"
        seconds = int(params.get("older_than_s", 0))
        what = {
            "postgres.terminate_long_queries": "active queries running",
            "postgres.terminate_idle_in_transaction": "sessions idle in transaction",
            "postgres.terminate_idle": "connections idle",
        }.get(action)
        if what is None or seconds < 1:
            return None
        pids = [p for p in params.get("pids") or [] if isinstance(p, int)]
        only = f" ({listed(pids)})" if pids else ""
        return f"terminate {what} over {humanize_seconds(seconds)} on {service}'s database{only}"
    aws = entry.aws
    if action.startswith("ecs.") and aws is not None and aws.ecs is not None:
        where = f"{aws.ecs.cluster}/{aws.ecs.service}"
        if action == "ecs.force_new_deployment":
            return f"force a new deployment of ECS service {where}"
        if action == "ecs.set_desired_count":
            return f"set ECS service {where} desired count to {int(params.get('desired', 0))}"
    if action == "autoscaling.set_desired_capacity" and aws and aws.autoscaling_group:
        return (
            f"set Auto Scaling group {aws.autoscaling_group} desired capacity to"
            f" {int(params.get('desired', 0))}"
        )
    if action == "redis.set_maxmemory_policy" and entry.redis is not None:
        return f"CONFIG SET maxmemory-policy allkeys-lru on {service}'s Redis"
    if action == "advice.warm_cache":
        return "by hand: pre-load the hot keys; nothing to run"
    if action == "advice.raise_memory_limit" and k8s is not None:
        if k8s.deployments and deployment not in k8s.deployments:
            return None
        container = str(params.get("container") or "")
        limit = str(params.get("limit") or "")
        where = f"deployment {k8s.namespace}/{deployment}"
        if _NAME.match(container):
            where = f"container {container} in {where}"
        above = f" above {limit}" if _QUANTITY.match(limit) else ""
        return (
            f"by hand: raise the memory limit of {where}{above} in its manifest and roll it"
            " out; nothing to run"
        )
    if action == "advice.check_network":
        return "by hand: look at the network path and disk I/O; nothing to run"
    return None
