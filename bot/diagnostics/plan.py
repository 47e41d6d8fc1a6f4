"""Which checks one `/diagnose <service> [check ...]` runs: the catalog entry, narrowed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.catalog import Service
from bot.diagnostics.findings import Check
from bot.diagnostics.probes import aws, http, kubernetes, postgres, prometheus, redis
from bot.errors import UsageError
from bot.targets.aws import AwsClient
from bot.targets.http import HttpClient
from bot.targets.kubernetes import KubernetesClient
from bot.targets.postgres import PostgresClient
from bot.targets.prometheus import PrometheusClient
from bot.targets.redis import RedisClient


@dataclass
class Clients:
    """The clients a diagnosis opened, closed together when it ends."""

    kubernetes: KubernetesClient | None = None

    async def close(self) -> None:
        if self.kubernetes is not None:
            await self.kubernetes.close()


def all_checks(
    entry: Service, clients: Clients, http_client: HttpClient, *, service: str
) -> list[Check]:
    """Every check the entry allows, each built on a client bounded by the entry (`service`
    is the entry's name, the default of its Prometheus selector)."""
    t = entry.thresholds
    found: list[Check] = list(http.checks(entry.http, t, http_client))
    if entry.postgres is not None:
        found += postgres.checks(entry.postgres, t, PostgresClient(entry.postgres))
    if entry.redis is not None:
        found += redis.checks(entry.redis, t, RedisClient(entry.redis))
    if entry.kubernetes is not None:
        clients.kubernetes = KubernetesClient(entry.kubernetes)
        found += kubernetes.checks(entry.kubernetes, t, clients.kubernetes)
    if entry.aws is not None:
        found += aws.checks(entry.aws, t, AwsClient(entry.aws))
    if entry.prometheus is not None:
        target = entry.prometheus
        found += prometheus.checks(target, service, PrometheusClient(target))
    return found


def check_names(checks: Sequence[Check]) -> list[str]:
    """Names a user may type: systems ("aws") and checks ("aws.ecs", "kubernetes.pods")."""
    names: list[str] = []
    for check in checks:
        for name in (check.system, check.name.split(" ")[0]):
            if name not in names:
                names.append(name)
    return names


def split_words(words: Sequence[str]) -> list[str]:
    """The service and checks as typed, commas read as spaces (`checkout,postgres` is
    `checkout postgres`), the same in Slack and at a terminal: a comma read as part of the
    name answered "No service called 'checkoutpostgres'"."""
    return [part for word in words for part in word.split(",") if part]


def select(checks: Sequence[Check], wanted: Sequence[str]) -> list[Check]:
    """The checks named in `wanted` (all when empty); UsageError for a name not on offer."""
    if not wanted:
        return list(checks)
    offered = check_names(checks)
    unknown = [name for name in wanted if name.lower() not in offered]
    if unknown:
        raise UsageError(
            f"No check called {', '.join(repr(n[:40]) for n in unknown)} for this service."
            f" Checks: {', '.join(offered)}."
        )
    chosen = {name.lower() for name in wanted}
    return [c for c in checks if c.system in chosen or c.name.split(" ")[0] in chosen]
