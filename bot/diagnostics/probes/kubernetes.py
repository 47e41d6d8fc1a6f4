"""Kubernetes: pods, their crash loops and logs, Warning events, rollouts, nodes and usage.

Everything is read in the catalogued namespace (nodes excepted: they are cluster-wide and
read-only), through bot.targets.kubernetes, each check within the entry's timeout.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.catalog import KubernetesTarget, Thresholds
from bot.diagnostics.findings import Check, Finding, Grade
from bot.diagnostics.grading import (
    describe_above,
    describe_at_least,
    grade_above,
    grade_at_least,
)
from bot.targets.errors import TargetNotFound
from bot.targets.kubernetes import KubernetesClient

_ERROR_LINE = re.compile(r"error|exception|traceback|fatal|panic|refused|killed", re.I)
_LOG_LINES_SHOWN = 20
_EVENT_WINDOW = timedelta(hours=1)
_BAD_NODE_CONDITIONS = {"MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"}


def checks(
    target: KubernetesTarget, thresholds: Thresholds, client: KubernetesClient
) -> list[Check]:
    timeout = target.timeout.seconds + 1
    where = f"{target.context or 'in-cluster'}/{target.namespace}"
    return [
        Check(
            "kubernetes.pods",
            "kubernetes",
            f"Pods in {where}",
            timeout * 2,
            lambda: _pods(target, thresholds, client),
        ),
        Check(
            "kubernetes.events",
            "kubernetes",
            "Warning events",
            timeout,
            lambda: _events(target, client),
        ),
        Check(
            "kubernetes.rollout",
            "kubernetes",
            "Rollouts",
            timeout,
            lambda: _rollouts(target, client),
        ),
        Check("kubernetes.nodes", "kubernetes", "Nodes", timeout, lambda: _nodes(client)),
        Check(
            "kubernetes.usage",
            "kubernetes",
            "Usage",
            timeout,
            lambda: _usage(target, thresholds, client),
        ),
    ]


def _owned_by_catalog(name: str, target: KubernetesTarget) -> bool:
    if target.selector or not target.deployments:
        return True
    return any(name.startswith(f"{deployment}-") for deployment in target.deployments)


def _deployment_of(pod_name: str, target: KubernetesTarget) -> str | None:
    for deployment in target.deployments:
        if pod_name.startswith(f"{deployment}-"):
            return deployment
    return None


async def _list_pods(target: KubernetesTarget, client: KubernetesClient) -> list[Any]:
    core = await client.core()
    kwargs = {"label_selector": target.selector} if target.selector else {}
    pods = await client.call(core.list_namespaced_pod, target.namespace, **kwargs)
    return [p for p in pods.items if _owned_by_catalog(p.metadata.name, target)]


async def rollout_findings(target: KubernetesTarget, client: KubernetesClient) -> list[Finding]:
    """Each catalogued deployment's ready/updated/desired replicas (auto-recovery reads these)."""
    return await _rollouts(target, client)


async def pod_findings(
    target: KubernetesTarget, thresholds: Thresholds, client: KubernetesClient
) -> list[Finding]:
    """The pods' states and crash loops, without the failing pods' logs (a periodic check)."""
    return await _pods(target, thresholds, client, logs=False)


async def _pods(
    target: KubernetesTarget, t: Thresholds, client: KubernetesClient, *, logs: bool = True
) -> list[Finding]:
    pods = await _list_pods(target, client)
    failing: list[dict[str, Any]] = []
    lines: list[str] = []
    most_restarts, restarts_pod = 0, ""
    for p in pods:
        statuses = p.status.container_statuses or []
        ready = bool(statuses) and all(s.ready for s in statuses)
        restarts = sum(s.restart_count or 0 for s in statuses)
        if restarts > most_restarts:
            most_restarts, restarts_pod = restarts, p.metadata.name
        waiting = next((s for s in statuses if s.state and s.state.waiting), None)
        reason = waiting.state.waiting.reason if waiting else None
        if p.status.phase != "Running" or not ready:
            container = waiting or (statuses[0] if statuses else None)
            failing.append(
                {
                    "pod": p.metadata.name,
                    "phase": p.status.phase,
                    "reason": reason or ("not ready" if p.status.phase == "Running" else ""),
                    "restarts": restarts,
                    "container": container.name if container else None,
                    "crashed": bool(
                        container and container.last_state and container.last_state.terminated
                    ),
                    "deployment": _deployment_of(p.metadata.name, target),
                }
            )
            lines.append(
                f"{p.metadata.name}: {p.status.phase}, {reason or 'not ready'}, {restarts} restarts"
            )
    findings = []
    crashloops = [f for f in failing if f["reason"] == "CrashLoopBackOff"]
    if not pods:
        findings.append(
            Finding(
                "kubernetes.pods",
                "Pods",
                Grade.CRIT,
                "no pods found",
                threshold="at least one Running and ready pod",
            )
        )
    elif failing:
        grade = Grade.CRIT if crashloops or len(failing) == len(pods) else Grade.WARN
        first = failing[0]
        findings.append(
            Finding(
                "kubernetes.pods",
                "Pods",
                grade,
                f"{len(failing)} of {len(pods)} not Running and ready"
                + (f"; {len(crashloops)} in CrashLoopBackOff" if crashloops else "")
                + f" (first: {first['pod']}, {first['reason'] or first['phase']})",
                threshold="every pod Running and ready",
                evidence=tuple(lines),
                facts={"failing": failing, "crashloops": crashloops, "total": len(pods)},
            )
        )
    else:
        findings.append(
            Finding(
                "kubernetes.pods",
                "Pods",
                Grade.OK,
                f"{len(pods)} Running and ready",
                threshold="every pod Running and ready",
            )
        )
    findings.append(
        Finding(
            "kubernetes.restarts",
            "Restarts",
            grade_at_least(most_restarts, t.restarts),
            f"most restarts: {most_restarts}" + (f" ({restarts_pod})" if restarts_pod else ""),
            threshold=describe_at_least(t.restarts),
            facts={"max": most_restarts, "pod": restarts_pod},
        )
    )
    for failed in failing[:3] if logs else []:
        findings.append(await _log_tail(target, client, failed))
    return findings


async def _log_tail(
    target: KubernetesTarget, client: KubernetesClient, failed: dict[str, Any]
) -> Finding:
    """The last error lines of a failing pod; the previous container's when it crashed."""
    core = await client.core()
    previous = bool(failed["crashed"] or failed["restarts"])
    kwargs: dict[str, Any] = {"tail_lines": target.log_lines, "previous": previous}
    if failed["container"]:
        kwargs["container"] = failed["container"]
    # Raw bytes: kubernetes 3x turns a `str` response into "b'...'" when preloading it.
    kwargs["_preload_content"] = False
    try:
        response = await client.call(
            core.read_namespaced_pod_log, failed["pod"], target.namespace, **kwargs
        )
        text = response.data.decode("utf-8", errors="replace")
    except TargetNotFound:
        text = ""
    lines = [line for line in str(text or "").splitlines() if line.strip()]
    errors = [line for line in lines if _ERROR_LINE.search(line)]
    shown = (errors or lines)[-_LOG_LINES_SHOWN:]
    which = "previous container" if previous else "container"
    summary = (
        f"{len(errors)} error lines in the last {len(lines)} of the {which}'s log"
        if lines
        else f"no log from the {which}"
    )
    if errors:
        summary += f"; last: {errors[-1][:160]}"
    return Finding(
        "kubernetes.logs",
        f"Log of {failed['pod']}",
        Grade.WARN if errors else Grade.OK,
        summary,
        threshold="error lines in a failing pod's log",
        evidence=tuple(f"{failed['pod']}: {line}" for line in shown),
        facts={"pod": failed["pod"], "errors": len(errors), "previous": previous},
    )


def _event_time(event: Any) -> datetime | None:
    for value in (event.last_timestamp, getattr(event, "event_time", None), event.first_timestamp):
        if value is not None:
            return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


async def _events(target: KubernetesTarget, client: KubernetesClient) -> list[Finding]:
    core = await client.core()
    listed = await client.call(
        core.list_namespaced_event, target.namespace, field_selector="type=Warning"
    )
    since = datetime.now(UTC) - _EVENT_WINDOW
    recent = [e for e in listed.items if (_event_time(e) or since) >= since]
    recent.sort(key=lambda e: _event_time(e) or since, reverse=True)
    if not recent:
        return [Finding("kubernetes.events", "Warning events", Grade.OK, "none in the last hour")]
    reasons: dict[str, int] = {}
    for e in recent:
        reasons[e.reason or "?"] = reasons.get(e.reason or "?", 0) + (e.count or 1)
    top = ", ".join(f"{reason} ×{n}" for reason, n in sorted(reasons.items(), key=lambda i: -i[1]))
    return [
        Finding(
            "kubernetes.events",
            "Warning events",
            Grade.WARN,
            f"{len(recent)} in the last hour: {top}"[:300],
            threshold="any Warning event in the last hour",
            evidence=tuple(
                f"{e.involved_object.kind}/{e.involved_object.name}: {e.reason}"
                f" ×{e.count or 1}: {e.message}"
                for e in recent[:30]
            ),
            facts={"reasons": reasons},
        )
    ]


async def _rollouts(target: KubernetesTarget, client: KubernetesClient) -> list[Finding]:
    apps = await client.apps()
    if target.deployments:
        deployments = [
            await client.call(apps.read_namespaced_deployment, name, target.namespace)
            for name in target.deployments
        ]
    else:
        kwargs = {"label_selector": target.selector} if target.selector else {}
        deployments = (
            await client.call(apps.list_namespaced_deployment, target.namespace, **kwargs)
        ).items
    findings = []
    for d in deployments:
        desired = d.spec.replicas if d.spec.replicas is not None else 1
        ready = d.status.ready_replicas or 0
        updated = d.status.updated_replicas or 0
        annotations = d.metadata.annotations or {}
        revision = int(annotations.get("deployment.kubernetes.io/revision", "0") or 0)
        if desired and ready == 0:
            grade = Grade.CRIT
        elif ready < desired or updated < desired:
            grade = Grade.WARN
        else:
            grade = Grade.OK
        findings.append(
            Finding(
                "kubernetes.rollout",
                f"Deployment {d.metadata.name}",
                grade,
                f"{ready}/{desired} ready, {updated} updated"
                + (" (rollout in progress)" if updated < desired else "")
                + (f", revision {revision}" if revision else ""),
                threshold="ready = updated = desired",
                facts={
                    "deployment": d.metadata.name,
                    "desired": desired,
                    "ready": ready,
                    "updated": updated,
                    "revision": revision,
                },
            )
        )
    return findings or [Finding("kubernetes.rollout", "Deployments", Grade.WARN, "none found")]


async def _nodes(client: KubernetesClient) -> list[Finding]:
    core = await client.core()
    nodes = (await client.call(core.list_node)).items
    problems, worst = [], Grade.OK
    for n in nodes:
        for c in n.status.conditions or []:
            if c.type == "Ready" and c.status != "True":
                problems.append(f"{n.metadata.name}: not Ready ({c.reason}: {c.message})")
                worst = Grade.CRIT
            elif c.type in _BAD_NODE_CONDITIONS and c.status == "True":
                problems.append(f"{n.metadata.name}: {c.type} ({c.reason}: {c.message})")
                worst = max(worst, Grade.WARN)
    summary = (
        f"{len(problems)} condition(s) on {len(nodes)} nodes: " + "; ".join(problems[:3])
        if problems
        else f"{len(nodes)} nodes Ready, no pressure"
    )
    return [
        Finding(
            "kubernetes.nodes",
            "Nodes",
            worst,
            summary[:300],
            threshold="Ready, no memory/disk/PID pressure",
            evidence=tuple(problems),
            facts={
                "problems": problems,
                "memory_pressure": any("MemoryPressure" in p for p in problems),
            },
        )
    ]


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


async def _usage(
    target: KubernetesTarget, t: Thresholds, client: KubernetesClient
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
    pods = {p.metadata.name: p for p in await _list_pods(target, client)}
    worst_cpu = worst_mem = 0.0
    cpu_pod = mem_pod = ""
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
            facts={"pct": worst_cpu, "pod": cpu_pod, "deployment": _deployment_of(cpu_pod, target)},
        ),
        Finding(
            "kubernetes.memory",
            "Memory",
            grade_above(worst_mem, t.memory_pct),
            f"highest {worst_mem:.0f} % of limit" + (f" ({mem_pod})" if mem_pod else ""),
            threshold=describe_above(t.memory_pct, " %"),
            facts={"pct": worst_mem, "pod": mem_pod, "deployment": _deployment_of(mem_pod, target)},
        ),
    ]
