"""Kubernetes: pods, their crash loops and logs, Warning events, rollouts, nodes and usage.

Everything is read in the catalogued namespace (nodes excepted: they are cluster-wide and
read-only), through bot.targets.kubernetes, each check within the entry's timeout. Pods and
events are the service's own only (kubernetes_owners: by ownerReferences, not by name). A
failing pod's containers say why they last ended (`OOMKilled`, exit 137) and what memory
they may use (limit, request): the advisor follows the reason, not only the crash loop.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from bot.catalog import KubernetesTarget, Thresholds
from bot.diagnostics.findings import Check, Finding, Grade
from bot.diagnostics.grading import (
    describe_at_least,
    grade_at_least,
)
from bot.diagnostics.probes.kubernetes_cluster import events, nodes, rollouts
from bot.diagnostics.probes.kubernetes_owners import Owned, OwnedOnce
from bot.diagnostics.probes.kubernetes_usage import usage
from bot.targets.errors import TargetNotFound, TargetUnavailable
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
    mine = OwnedOnce(target, client)  # pods, events and usage: one reading of what is ours
    return [
        Check(
            "kubernetes.pods",
            "kubernetes",
            f"Pods in {where}",
            timeout * 2,
            lambda: _pods(target, thresholds, client, mine),
        ),
        Check(
            "kubernetes.events",
            "kubernetes",
            "Warning events",
            timeout,
            lambda: events(target, client, mine),
        ),
        Check(
            "kubernetes.rollout",
            "kubernetes",
            "Rollouts",
            timeout,
            lambda: rollouts(target, client),
        ),
        Check("kubernetes.nodes", "kubernetes", "Nodes", timeout, lambda: nodes(client)),
        Check(
            "kubernetes.usage",
            "kubernetes",
            "Usage",
            timeout,
            lambda: usage(target, thresholds, client, mine),
        ),
    ]


def _containers(pod: Any) -> list[dict[str, Any]]:
    """Each container's restarts, why it last ended, and its memory limit and request."""
    specs = {c.name: c for c in pod.spec.containers or []}
    described = []
    for status in pod.status.container_statuses or []:
        spec = specs.get(status.name)
        resources = spec.resources if spec is not None else None
        limits = (resources.limits if resources else None) or {}
        requests = (resources.requests if resources else None) or {}
        # Terminated now, or (restarted since, as in a crash loop) the last time it ended.
        ended = (status.state.terminated if status.state else None) or (
            status.last_state.terminated if status.last_state else None
        )
        described.append(
            {
                "name": status.name,
                "restarts": status.restart_count or 0,
                "last_reason": ended.reason if ended else None,
                "exit_code": ended.exit_code if ended else None,
                "memory_limit": limits.get("memory"),
                "memory_request": requests.get("memory"),
            }
        )
    return described


def _ended_words(container: dict[str, Any]) -> str:
    """`app last ended OOMKilled (exit 137), memory limit 256Mi, request 128Mi`."""
    words = str(container["name"])
    if container["last_reason"] or container["exit_code"] is not None:
        words += f" last ended {container['last_reason'] or 'terminated'}"
        if container["exit_code"] is not None:
            words += f" (exit {container['exit_code']})"
    words += f", memory limit {container['memory_limit'] or 'none'}"
    return words + f", request {container['memory_request'] or 'none'}"


def _unschedulable(pod: Any) -> str | None:
    """The scheduler's message when no node can take the pod yet (None: it is placed, or
    not known to be unplaceable); `PodScheduled=False, reason Unschedulable`."""
    if pod.status.phase != "Pending":
        return None
    for c in pod.status.conditions or []:
        if c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable":
            return str(c.message or "").strip()
    return None


def waiting_for_node(pods: list[dict[str, Any]]) -> str:
    """`2 pods waiting for a node: Unschedulable: 0/3 nodes are available: ...`."""
    count = f"{len(pods)} pod" + ("" if len(pods) == 1 else "s")
    message = next((str(p["scheduler_message"]) for p in pods if p["scheduler_message"]), "")
    return f"{count} waiting for a node: Unschedulable" + (f": {message}" if message else "")


async def rollout_findings(target: KubernetesTarget, client: KubernetesClient) -> list[Finding]:
    """Each catalogued deployment's ready/updated/desired replicas (auto-recovery reads these)."""
    return await rollouts(target, client)


async def pod_findings(
    target: KubernetesTarget, thresholds: Thresholds, client: KubernetesClient
) -> list[Finding]:
    """The pods' states and crash loops, without the failing pods' logs (a periodic check)."""
    return await _pods(target, thresholds, client, OwnedOnce(target, client), logs=False)


async def _pods(
    target: KubernetesTarget,
    t: Thresholds,
    client: KubernetesClient,
    read: Callable[[], Awaitable[Owned]],
    *,
    logs: bool = True,
) -> list[Finding]:
    mine = await read()
    pods = mine.pods
    failing: list[dict[str, Any]] = []
    lines: list[str] = []
    most_restarts, restarts_pod, restarts_why = 0, "", ""
    for p in pods:
        statuses = p.status.container_statuses or []
        ready = bool(statuses) and all(s.ready for s in statuses)
        restarts = sum(s.restart_count or 0 for s in statuses)
        containers = _containers(p)
        ended = [c for c in containers if c["last_reason"] or c["exit_code"] is not None]
        if restarts > most_restarts:
            most_restarts, restarts_pod = restarts, p.metadata.name
            restarts_why = f"; {_ended_words(ended[0])}" if ended else ""
        waiting = next((s for s in statuses if s.state and s.state.waiting), None)
        reason = waiting.state.waiting.reason if waiting else None
        scheduler = _unschedulable(p)
        if scheduler is not None:
            reason = f"Unschedulable: {scheduler}" if scheduler else "Unschedulable"
        if p.status.phase != "Running" or not ready:
            container = waiting or (statuses[0] if statuses else None)
            oom = [c for c in containers if c["last_reason"] == "OOMKilled"]
            failing.append(
                {
                    "pod": p.metadata.name,
                    "phase": p.status.phase,
                    "reason": reason or ("not ready" if p.status.phase == "Running" else ""),
                    # Waiting for a node (the cluster autoscaler's capacity), not failing:
                    # a restart cannot place it, only add more pods to place.
                    "unschedulable": scheduler is not None,
                    "scheduler_message": scheduler or "",
                    "restarts": restarts,
                    "container": container.name if container else None,
                    "crashed": bool(
                        container and container.last_state and container.last_state.terminated
                    ),
                    "deployment": mine.deployment_of(p.metadata.name),
                    "containers": containers,
                    "oom_killed": [c["name"] for c in oom],
                }
            )
            lines.append(
                f"{p.metadata.name}: {p.status.phase}, {reason or 'not ready'}, {restarts} restarts"
                + "".join(f"; {_ended_words(c)}" for c in ended or containers)
            )
    findings = []
    crashloops = [f for f in failing if f["reason"] == "CrashLoopBackOff"]
    oom_killed = [f for f in failing if f["oom_killed"]]
    no_node = [f for f in failing if f["unschedulable"]]
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
        failed = [f for f in failing if not f["unschedulable"]]
        first = oom_killed[0] if oom_killed else (failed or failing)[0]
        why = [c for c in first["containers"] if c["name"] in first["oom_killed"]] or [
            c for c in first["containers"] if c["last_reason"] or c["exit_code"] is not None
        ]
        findings.append(
            Finding(
                "kubernetes.pods",
                "Pods",
                grade,
                f"{len(failing)} of {len(pods)} not Running and ready"
                + (f"; {len(crashloops)} in CrashLoopBackOff" if crashloops else "")
                + (f"; {len(oom_killed)} OOMKilled" if oom_killed else "")
                + (f"; {waiting_for_node(no_node)}" if no_node else "")
                + (
                    f" (first: {first['pod']}, {first['reason'] or first['phase']}"
                    + (f"; {_ended_words(why[0])}" if why else "")
                    + ")"
                    if failed
                    else ""
                )
                # The runbook's memory path: a restart would only repeat the kill.
                + ("; the memory limit should be raised" if oom_killed else ""),
                threshold="every pod Running and ready",
                evidence=tuple(lines),
                facts={
                    "failing": failing,
                    "crashloops": crashloops,
                    "unschedulable": no_node,
                    "total": len(pods),
                },
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
            f"most restarts: {most_restarts}"
            + (f" ({restarts_pod}{restarts_why})" if restarts_pod else ""),
            threshold=describe_at_least(t.restarts),
            facts={"max": most_restarts, "pod": restarts_pod},
        )
    )
    # A pod on no node has no container, hence no log, to read.
    for tail in [f for f in failing if not f["unschedulable"]][:3] if logs else []:
        findings.append(await _log_tail(target, client, tail))
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
    except (TargetNotFound, TargetUnavailable):
        # Gone, or refused (400 when the previous container's log was rotated away): the
        # pods' states still stand without it.
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
