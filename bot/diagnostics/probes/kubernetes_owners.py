"""Which Kubernetes objects are the service's own, as the controllers record it.

A catalogued deployment owns the replica sets whose controller `ownerReference` is its UID,
and those own the pods whose controller reference is theirs. Names alone mislead: the pods
of deployment `search-indexer` start with `search-` too, and a namespace's events are every
service's. With neither `deployments` nor `selector` in the catalog the whole namespace is
the service's; with a `selector`, the pods it selects are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.catalog import KubernetesTarget
from bot.targets.kubernetes import KubernetesClient


@dataclass(frozen=True, slots=True)
class Owned:
    """The service's deployments, replica sets (name -> deployment) and pods."""

    everything: bool
    deployments: frozenset[str]
    replica_sets: Mapping[str, str]
    pods: tuple[Any, ...]
    pod_deployments: Mapping[str, str | None]

    def deployment_of(self, pod_name: str) -> str | None:
        return self.pod_deployments.get(pod_name)

    def owns(self, kind: str, name: str) -> bool:
        """Whether an event's involved object is one of the service's own."""
        if self.everything:
            return True
        if kind == "Deployment":
            return name in self.deployments
        if kind == "ReplicaSet":
            return name in self.replica_sets
        if kind == "Pod":
            # A pod deleted since (a crash-looping one replaced) still has its events; its
            # name was generated from its replica set's, `<replica set>-<suffix>`.
            return name in self.pod_deployments or any(
                name.startswith(f"{rs}-") for rs in self.replica_sets
            )
        return False


def _controller(obj: Any) -> Any | None:
    for ref in obj.metadata.owner_references or []:
        if ref.controller:
            return ref
    return None


async def owned(target: KubernetesTarget, client: KubernetesClient) -> Owned:
    """Read the namespace's deployments, replica sets and pods; keep the service's own."""
    core, apps = await client.core(), await client.apps()
    selected = {"label_selector": target.selector} if target.selector else {}
    pods = (await client.call(core.list_namespaced_pod, target.namespace, **selected)).items
    if target.deployments:
        listed = await client.call(apps.list_namespaced_deployment, target.namespace)
        deployments = [d for d in listed.items if d.metadata.name in target.deployments]
    else:
        listed = await client.call(apps.list_namespaced_deployment, target.namespace, **selected)
        deployments = listed.items
    by_uid = {d.metadata.uid: d.metadata.name for d in deployments}
    replica_sets: dict[str, str] = {}
    set_names: dict[str, str] = {}
    for rs in (await client.call(apps.list_namespaced_replica_set, target.namespace)).items:
        owner = _controller(rs)
        if owner is not None and owner.uid in by_uid:
            replica_sets[rs.metadata.name] = by_uid[owner.uid]
            set_names[rs.metadata.uid] = rs.metadata.name
    by_deployment_only = bool(target.deployments) and not target.selector
    kept, pod_deployments = [], {}
    for pod in pods:
        owner = _controller(pod)
        rs_name = set_names.get(owner.uid) if owner is not None else None
        deployment = replica_sets.get(rs_name) if rs_name else None
        if deployment is None and by_deployment_only:
            continue  # another deployment's pod, or nobody's
        kept.append(pod)
        pod_deployments[pod.metadata.name] = deployment
    return Owned(
        everything=not target.deployments and not target.selector,
        deployments=frozenset(d.metadata.name for d in deployments),
        replica_sets=replica_sets,
        pods=tuple(kept),
        pod_deployments=pod_deployments,
    )


class OwnedOnce:
    """One reading of the service's objects, shared by the checks of one diagnosis: the first
    check to ask reads it, the others wait for it (and read it themselves if that check was
    cut off by its timeout)."""

    def __init__(self, target: KubernetesTarget, client: KubernetesClient) -> None:
        self._target, self._client = target, client
        self._owned: Owned | None = None
        self._lock = asyncio.Lock()

    async def __call__(self) -> Owned:
        async with self._lock:
            if self._owned is None:
                self._owned = await owned(self._target, self._client)
            return self._owned
