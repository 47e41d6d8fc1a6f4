"""The advisor's Kubernetes suggestions that take some working out (bot.diagnostics.advisor
ranks them): a scale-out's target, the memory path's advice, and a crash loop beside pods
waiting for a node."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from bot.catalog import KubernetesTarget
from bot.diagnostics.finding_reads import bad, count
from bot.diagnostics.findings import PARAMS_MAX, Finding
from bot.policy.actions import MAX_PODS


class Add(Protocol):
    """The advisor's `add`: one suggestion at a rank, for a finding."""

    def __call__(
        self, rank: int, finding: Finding, action: str, label: str, would: str, **params: Any
    ) -> None: ...


def not_ready_by_deployment(findings: Sequence[Finding]) -> tuple[dict[str, int], dict[str, int]]:
    """Pods not ready, by deployment: (waiting for a node, placed by no restart; failing)."""
    no_node: dict[str, int] = {}
    failing: dict[str, int] = {}
    for f in bad(findings, "kubernetes.pods"):
        for pod in f.facts.get("failing", []):
            counts = no_node if pod.get("unschedulable") else failing
            counts[str(pod.get("deployment"))] = counts.get(str(pod.get("deployment")), 0) + 1
    return no_node, failing


def scale_out(
    add: Add,
    k8s: KubernetesTarget,
    rollouts: Mapping[Any, Finding],
    rank: int,
    f: Finding,
    deployment: str,
    why: str,
) -> None:
    """Scale `deployment` out by half (at least one), to no fewer than the catalog's minimum
    and no more than its maximum; never when its replica count was not read (the catalog's
    minimum, guessed instead, made "scale out to 3" a scale in of 8), nor when that is not
    more than it runs (from 0, "scale out to 1" was below a minimum of 2, which the
    remediation refuses)."""
    current = rollouts.get(deployment)
    if current is None or current.facts.get("desired") is None:
        return
    now = int(current.facts["desired"])
    # min_replicas <= max_replicas (the catalog checks it), so this is within both.
    target = min(k8s.max_replicas, max(k8s.min_replicas, now + 1, math.ceil(now * 1.5)))
    if target > now:
        add(
            rank,
            f,
            "kubernetes.scale",
            f"Scale {deployment} to {target}",
            f"scale deployment {k8s.namespace}/{deployment} from {now} to {target}"
            f" replicas (catalog maximum {k8s.max_replicas}){why}",
            deployment=deployment,
            replicas=target,
        )


def raise_memory(
    add: Add,
    k8s: KubernetesTarget,
    rank: int,
    f: Finding,
    deployment: str,
    container: dict[str, Any],
) -> None:
    limit = container.get("memory_limit") or "none"
    name = str(container.get("name") or "")
    add(
        rank,
        f,
        "advice.raise_memory_limit",
        f"Raise {deployment}'s memory limit ({limit})",
        "by hand: raise the memory limit of"
        + (f" container {name} in" if name else "")
        + f" deployment {k8s.namespace}/{deployment} above {limit} (request"
        f" {container.get('memory_request') or 'none'}) in its manifest and roll it out;"
        " a restart only repeats the kill",
        deployment=deployment,
        container=name,
        limit=limit,
    )


def replace_looping(
    add: Add,
    k8s: KubernetesTarget,
    rank: int,
    f: Finding,
    deployment: str,
    no_node: Mapping[str, int],
) -> None:
    """Replace (delete, for its replica set to recreate) the crash-looping pods of
    `deployment`, all of them in one request, instead of restarting it: beside pods waiting
    for a node, a restart would replace the ready pods too, each needing a node. Automatic
    recovery replaces the same pods (bot.remediation.recovery_plan). One button, not one a
    pod: each request waits for another person's approval, and at 3 a.m. one approval that
    names every pod the finding named beats five that each fix a fifth."""
    waiting = no_node.get(deployment, 0)
    looping = [str(p["pod"]) for p in f.facts["crashloops"] if p.get("deployment") == deployment]
    if not looping:
        return
    pods = _fitting(deployment, looping[:MAX_PODS])
    if len(looping) == 1:
        label = f"Replace crash-looping pod {pods[0]}"
    elif len(pods) < len(looping):
        label = f"Replace {len(pods)} of {len(looping)} crash-looping pods of {deployment}"
    else:
        label = f"Replace {len(pods)} crash-looping pods of {deployment}"
    first = ""
    if len(pods) < len(looping):
        why = (
            f"at most {MAX_PODS} a request"
            if len(pods) == MAX_PODS
            else "as many as one button can carry"
        )
        first = f" (the first {len(pods)} of {len(looping)}: {why})"
    add(
        rank,
        f,
        "kubernetes.delete_pod",
        label,
        f"delete {count(len(pods), 'pod', 'pods')} {k8s.namespace}/{', '.join(pods)}{first} for"
        f" its replica set to recreate {'it' if len(pods) == 1 else 'them'}: only"
        f" {'that pod' if len(pods) == 1 else 'those pods'}, not a restart of {deployment},"
        f" which would replace its ready pods too while"
        f" {count(waiting, 'pod waits', 'pods wait')} for a node",
        deployment=deployment,
        # One pod as the release before names it: its button still works on a replica of
        # that release (a rolling upgrade, a rollback), which refuses `pods`.
        **({"pod": pods[0]} if len(pods) == 1 else {"pods": pods}),
    )


def _fitting(deployment: str, pods: Sequence[str]) -> list[str]:
    """The first of `pods` whose parameters fit a button's value (PARAMS_MAX): 25 pods of 63
    characters beside a deployment of 253 did not, and a value cut short requests nothing."""
    fit: list[str] = []
    for pod in pods:
        params = {"deployment": deployment, "pods": [*fit, pod]}
        if fit and len(json.dumps(params, separators=(",", ":"))) > PARAMS_MAX:
            break
        fit.append(pod)
    return fit
