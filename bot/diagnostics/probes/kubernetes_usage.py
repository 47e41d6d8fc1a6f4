"""Kubernetes usage from the metrics API: each of the service's pods' CPU and memory against
its limits (the highest of each graded), when metrics-server is installed."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from bot.catalog import KubernetesTarget, Thresholds
from bot.diagnostics.findings import Finding, Grade
from bot.diagnostics.grading import describe_above, grade_above
from bot.diagnostics.probes.kubernetes_owners import Owned
from bot.targets.errors import TargetNotFound
from bot.targets.kubernetes import KubernetesClient


def _quantity(text: str) -> float:
    """CPU in cores ("250m", "1"), memory in bytes ("200Mi", "1Gi", "512k")."""
    units = {
        "n": 1e-9,
        "u": 1e-6,
        "m": 1e-3,
        "k": 1e3,
        "M": 1e6,
        "G": 1e9,
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
    }
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", text.strip())
    if not match:
        return 0.0
    return float(match.group(1)) * units.get(match.group(2), 1.0)


async def usage(
    target: KubernetesTarget,
    t: Thresholds,
    client: KubernetesClient,
    read: Callable[[], Awaitable[Owned]],
) -> list[Finding]:
    custom = await client.custom()
    try:
        metrics = await client.call(
            custom.list_namespaced_custom_object,
            "metrics.k8s.io",
            "v1beta1",
            target.namespace,
            "pods",
        )
    except TargetNotFound:
        return [
            Finding(
                "kubernetes.usage",
                "Usage",
                Grade.OK,
                "note: the metrics API is not installed, so no usage figures",
            )
        ]
    mine = await read()
    pods = {p.metadata.name: p for p in mine.pods}
    worst_cpu = worst_mem = 0.0
    cpu_pod = mem_pod = ""
    mem_limits: dict[str, float] = {}
    lines = []
    for item in metrics.get("items", []):
        name = item["metadata"]["name"]
        spec = pods.get(name)
        if spec is None:
            continue
        limits: dict[str, float] = {"cpu": 0.0, "memory": 0.0}
        for container in spec.spec.containers:
            resource_limits = (container.resources.limits if container.resources else None) or {}
            for key in limits:
                if key in resource_limits:
                    limits[key] += _quantity(resource_limits[key])
        cpu = sum(_quantity(c["usage"].get("cpu", "0")) for c in item.get("containers", []))
        mem = sum(_quantity(c["usage"].get("memory", "0")) for c in item.get("containers", []))
        mem_limits[name] = limits["memory"]
        cpu_pct = 100 * cpu / limits["cpu"] if limits["cpu"] else 0.0
        mem_pct = 100 * mem / limits["memory"] if limits["memory"] else 0.0
        lines.append(
            f"{name}: CPU {cpu * 1000:.0f}m ({cpu_pct:.0f} % of limit),"
            f" memory {mem / 2**20:.0f} MiB ({mem_pct:.0f} % of limit)"
        )
        if cpu_pct > worst_cpu:
            worst_cpu, cpu_pod = cpu_pct, name
        if mem_pct > worst_mem:
            worst_mem, mem_pod = mem_pct, name
    return [
        Finding(
            "kubernetes.cpu",
            "CPU",
            grade_above(worst_cpu, t.cpu_pct),
            f"highest {worst_cpu:.0f} % of limit" + (f" ({cpu_pod})" if cpu_pod else ""),
            threshold=describe_above(t.cpu_pct, " %"),
            evidence=tuple(lines),
            facts={"pct": worst_cpu, "pod": cpu_pod, "deployment": mine.deployment_of(cpu_pod)},
        ),
        Finding(
            "kubernetes.memory",
            "Memory",
            grade_above(worst_mem, t.memory_pct),
            f"highest {worst_mem:.0f} % of limit" + (f" ({mem_pod})" if mem_pod else ""),
            threshold=describe_above(t.memory_pct, " %"),
            facts={
                "pct": worst_mem,
                "pod": mem_pod,
                "deployment": mine.deployment_of(mem_pod),
                "limit_mib": round(mem_limits.get(mem_pod, 0.0) / 2**20),
            },
        ),
    ]
