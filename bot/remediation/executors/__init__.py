"""One executor per system of the service catalog, each through that system's client."""

from __future__ import annotations

from bot.remediation.executors.aws import AwsExecutor
from bot.remediation.executors.kubernetes import KubernetesExecutor
from bot.remediation.executors.postgres import PostgresExecutor
from bot.remediation.executors.redis import RedisExecutor
from bot.remediation.plans import Executor


def default_executors() -> dict[str, Executor]:
    return {
        "kubernetes": KubernetesExecutor(),
        "postgres": PostgresExecutor(),
        "redis": RedisExecutor(),
        "aws": AwsExecutor(),
    }
