"""Kubernetes: the service's Warning events, its deployments' rollouts and the nodes.

Read in the catalogued namespace (nodes excepted: they are cluster-wide and read-only), through
bot.targets.kubernetes; the pods, their logs and the checks' list are in probes.kubernetes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.catalog import KubernetesTarget
from bot.diagnostics.findings import Finding, Grade
from bot.diagnostics.probes.kubernetes_owners import Owned
from bot.targets.kubernetes import KubernetesClient, revision_of

_EVENT_WINDOW = timedelta(hours=1)
_BAD_NODE_CONDITIONS = {"MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"}


def _event_time(event: Any) -> datetime | None:
    for value in (event.last_timestamp, getattr(event, "event_time", None), event.first_timestamp):
        if value is not None:
            stamp: datetime = value if value.tzinfo else value.replace(tzinfo=UTC)
            return stamp
    return None


def _involves(event: Any, mine: Owned) -> bool:
    involved = event.involved_object
    return involved is not None and mine.owns(str(involved.kind or ""), str(involved.name or ""))


async def events(
    target: KubernetesTarget, client: KubernetesClient, read: Callable[[], Awaitable[Owned]]
) -> list[Finding]:
    """Warning events of the last hour about the service's own deployments, replica sets and
    pods; the namespace's other services' events are left out."""
    core = await client.core()
    mine = await read()
    listed = await client.call(
        core.list_namespaced_event, target.namespace, field_selector="type=Warning"
    )
    since = datetime.now(UTC) - _EVENT_WINDOW
    within = [e for e in listed.items if (_event_time(e) or since) >= since]
    recent = [e for e in within if _involves(e, mine)]
    recent.sort(key=lambda e: _event_time(e) or since, reverse=True)
    others = len(within) - len(recent)
    if not recent:
        note = f" ({others} about other services' objects left out)" if others else ""
        return [
            Finding("kubernetes.events", "Warning events", Grade.OK, f"none in the last hour{note}")
        ]
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
            facts={"reasons": reasons, "others_left_out": others},
        )
    ]


async def rollouts(target: KubernetesTarget, client: KubernetesClient) -> list[Finding]:
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
    # A rollback returns to the newest older replica set the deployment owns: is there one?
    sets = (await client.call(apps.list_namespaced_replica_set, target.namespace)).items
    findings = []
    for d in deployments:
        desired = d.spec.replicas if d.spec.replicas is not None else 1
        ready = d.status.ready_replicas or 0
        updated = d.status.updated_replicas or 0
        revision = revision_of(d)
        previous = max(
            (
                revision_of(rs)
                for rs in sets
                if any(r.uid == d.metadata.uid for r in rs.metadata.owner_references or [])
                and revision_of(rs) < revision
            ),
            default=0,
        )
        # Kubernetes' own verdict on a rollout: stuck past its progressDeadlineSeconds.
        stalled = any(
            c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded"
            for c in d.status.conditions or []
        )
        # Paused by a person (`kubectl rollout pause`): Kubernetes never marks it stalled.
        paused = bool(d.spec.paused)
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
                + (
                    " (paused: kubectl rollout resume to go on)"
                    if paused
                    else " (rollout stalled: ProgressDeadlineExceeded)"
                    if updated < desired and stalled
                    else " (rollout in progress)"
                    if updated < desired
                    else ""
                )
                + (f", revision {revision}" if revision else ""),
                threshold="ready = updated = desired",
                facts={
                    "deployment": d.metadata.name,
                    "desired": desired,
                    "ready": ready,
                    "updated": updated,
                    "revision": revision,
                    "previous_revision": previous,
                    "stalled": stalled,
                    "paused": paused,
                },
            )
        )
    return findings or [Finding("kubernetes.rollout", "Deployments", Grade.WARN, "none found")]


async def nodes(client: KubernetesClient) -> list[Finding]:
    core = await client.core()
    nodes = (await client.call(core.list_node)).items
    problems, worst = [], Grade.OK
    for n in nodes:
        conditions = n.status.conditions or []
        if not any(c.type == "Ready" for c in conditions):
            # A node that reports no readiness (lost, or still joining) runs nothing for sure.
            problems.append(f"{n.metadata.name}: not Ready (no Ready condition reported)")
            worst = Grade.CRIT
        for c in conditions:
            if c.type == "Ready" and c.status != "True":
                problems.append(f"{n.metadata.name}: not Ready ({c.reason}: {c.message})")
                worst = Grade.CRIT
            elif c.type in _BAD_NODE_CONDITIONS and c.status == "True":
                problems.append(f"{n.metadata.name}: {c.type} ({c.reason}: {c.message})")
                worst = max(worst, Grade.WARN)
    counted = f"{len(nodes)} node" + ("" if len(nodes) == 1 else "s")
    if not nodes:
        # No node at all: nothing can be scheduled (it was graded OK, "0 nodes Ready").
        problems, worst = ["no nodes in the cluster: no pod can be scheduled"], Grade.CRIT
        summary = problems[0]
    elif problems:
        summary = f"{len(problems)} condition(s) on {counted}: " + "; ".join(problems[:3])
    else:
        summary = f"{counted} Ready, no pressure"
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
