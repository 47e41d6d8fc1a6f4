"""Kubernetes actions through the official client, as kubectl would make them.

- restart: a strategic merge patch of `spec.template.metadata.annotations
  ["kubectl.kubernetes.io/restartedAt"]` (what `kubectl rollout restart` sends).
- scale: a patch of the `scale` subresource, within the catalog's min/max replicas.
- rollback: the previous ReplicaSet's pod template (without its pod-template-hash label) put
  back with a JSON patch of `/spec/template` (what `kubectl rollout undo` sends).
- delete_pod: the pods named, each one a catalogued deployment owns, deleted with its UID as
  precondition (bot.remediation.executors.kubernetes_pods).

Each re-reads the target before it changes it and stops if it moved since the preview.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.catalog import KubernetesTarget
from bot.remediation.actions import Params, PodParams, ScaleParams
from bot.remediation.executors import kubernetes_pods
from bot.remediation.plans import NotApplicable, Outcome, Preview, Target, unreached
from bot.targets.errors import TargetError, TargetNotFound
from bot.targets.kubernetes import KubernetesClient, revision_of

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
HASH_LABEL = "pod-template-hash"


def _catalog(target: Target) -> KubernetesTarget:
    k8s_target = target.entry.kubernetes
    if k8s_target is None:
        raise NotApplicable(f"The catalog names no Kubernetes for '{target.service}'.")
    if not k8s_target.deployments:
        raise NotApplicable(f"The catalog names no deployments for '{target.service}'.")
    return k8s_target


def _deployment_name(k8s_target: KubernetesTarget, params: Params) -> str:
    name = getattr(params, "deployment", None)
    if name is None:
        if len(k8s_target.deployments) == 1:
            return k8s_target.deployments[0]
        names = ", ".join(k8s_target.deployments)
        raise NotApplicable(f"Name the deployment: deployment=<{names}>.")
    if name not in k8s_target.deployments:
        names = ", ".join(k8s_target.deployments)
        raise NotApplicable(f"'{name}' is not a catalogued deployment (catalogued: {names}).")
    return str(name)


def _images(template: Any) -> str:
    return ", ".join(c.image for c in (template.spec.containers or [])) or "?"


def _where(name: str, namespace: str) -> str:
    return f"deployment {name} in namespace {namespace}"


async def _read_back(client: KubernetesClient, k8s_target: KubernetesTarget, name: str) -> Any:
    """The deployment after a change that was made, or None when it cannot be read: the
    change stands, and a failed read must not report it as not made."""
    apps = await client.apps()
    try:
        return await client.call(apps.read_namespaced_deployment, name, k8s_target.namespace)
    except TargetError:
        return None


def _unread(name: str) -> str:
    return f"{name} could not be read back: check it"


def _moved(deployment: Any, name: str, preview: Preview) -> Outcome | None:
    """Nothing done, when the deployment is no longer at the revision the preview showed."""
    now = revision_of(deployment)
    if now == int(preview.facts["revision"]):
        return None
    return Outcome(
        False,
        "nothing changed",
        f"{name} is at revision {now}",
        drift=f"the deployment moved from revision {preview.facts['revision']} to {now}"
        " since the preview",
    )


class KubernetesExecutor:
    def __init__(self, *, now: Any = None) -> None:
        self._now = now or (lambda: datetime.now(UTC))

    async def preview(self, target: Target, params: Params) -> Preview:
        k8s_target = _catalog(target)
        client = KubernetesClient(k8s_target)
        try:
            if isinstance(params, PodParams):
                return await kubernetes_pods.preview(client, k8s_target, params)
            name = _deployment_name(k8s_target, params)
            apps = await client.apps()
            try:
                deployment = await client.call(
                    apps.read_namespaced_deployment, name, k8s_target.namespace
                )
            except TargetNotFound:
                raise NotApplicable(
                    f"{_where(name, k8s_target.namespace)} does not exist."
                ) from None
            action = target.spec.name
            if action == "kubernetes.scale":
                assert isinstance(params, ScaleParams)
                return await self._preview_scale(client, k8s_target, name, params)
            if action == "kubernetes.rollback":
                return await self._preview_rollback(client, k8s_target, deployment)
            replicas = deployment.spec.replicas or 0
            revision = revision_of(deployment)
            return Preview(
                f"rollout restart of {_where(name, k8s_target.namespace)}: its {replicas} pods"
                f" replaced one by one (revision {revision} -> {revision + 1})",
                {"deployment": name, "revision": revision, "replicas": replicas},
            )
        finally:
            await client.close()

    async def execute(self, target: Target, params: Params, preview: Preview) -> Outcome:
        k8s_target = _catalog(target)
        client = KubernetesClient(k8s_target)
        try:
            action = target.spec.name
            if action == "kubernetes.delete_pod":
                return await kubernetes_pods.delete(client, k8s_target, preview)
            if action == "kubernetes.scale":
                return await self._scale(client, k8s_target, preview)
            if action == "kubernetes.rollback":
                return await self._rollback(client, k8s_target, preview)
            return await self._restart(client, k8s_target, preview)
        finally:
            await client.close()

    # -- scale ------------------------------------------------------------------------------

    async def _preview_scale(
        self, client: KubernetesClient, k8s_target: KubernetesTarget, name: str, p: ScaleParams
    ) -> Preview:
        low, high = k8s_target.min_replicas, k8s_target.max_replicas
        if not low <= p.replicas <= high:
            raise NotApplicable(
                f"{p.replicas} replicas is outside the catalog's bounds ({low} to {high})."
            )
        apps = await client.apps()
        scale = await client.call(apps.read_namespaced_deployment_scale, name, k8s_target.namespace)
        current = int(scale.spec.replicas or 0)
        if current == p.replicas:
            raise NotApplicable(f"{_where(name, k8s_target.namespace)} already has {current}.")
        return Preview(
            f"scale {_where(name, k8s_target.namespace)} from {current} to {p.replicas} replicas",
            {"deployment": name, "from": current, "to": p.replicas},
        )

    async def _scale(
        self, client: KubernetesClient, k8s_target: KubernetesTarget, preview: Preview
    ) -> Outcome:
        name, want = preview.facts["deployment"], int(preview.facts["to"])
        apps = await client.apps()
        try:
            scale = await client.call(
                apps.read_namespaced_deployment_scale, name, k8s_target.namespace
            )
        except TargetError as exc:  # nothing sent yet
            return unreached(exc)
        now = int(scale.spec.replicas or 0)
        if now != int(preview.facts["from"]):
            return Outcome(
                False,
                "nothing changed",
                f"{name} has {now} replicas",
                drift=f"replicas moved from {preview.facts['from']} to {now} since the preview",
            )
        await client.call(
            apps.patch_namespaced_deployment_scale,
            name,
            k8s_target.namespace,
            {"spec": {"replicas": want}},
        )
        changed = f"scaled {name} from {now} to {want} replicas"
        after = await _read_back(client, k8s_target, name)
        if after is None:
            return Outcome(True, changed, _unread(name))
        return Outcome(
            True,
            changed,
            f"{name}: {after.spec.replicas} replicas wanted, {after.status.ready_replicas or 0}"
            f" ready, generation {after.metadata.generation}",
            facts={"replicas": after.spec.replicas, "generation": after.metadata.generation},
        )

    # -- restart ----------------------------------------------------------------------------

    async def _restart(
        self, client: KubernetesClient, k8s_target: KubernetesTarget, preview: Preview
    ) -> Outcome:
        name = preview.facts["deployment"]
        apps = await client.apps()
        # A deploy since the preview: restarting now would roll out a revision never approved.
        try:
            deployment = await client.call(
                apps.read_namespaced_deployment, name, k8s_target.namespace
            )
        except TargetError as exc:  # nothing sent yet
            return unreached(exc)
        moved = _moved(deployment, name, preview)
        if moved is not None:
            return moved
        stamp = self._now().strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
        await client.call(apps.patch_namespaced_deployment, name, k8s_target.namespace, body)
        changed = f"restarted {name} ({RESTARTED_AT}={stamp})"
        after = await _read_back(client, k8s_target, name)
        if after is None:
            return Outcome(True, changed, _unread(name), facts={"restarted_at": stamp})
        return Outcome(
            True,
            changed,
            f"{name}: revision {revision_of(after)}, generation {after.metadata.generation},"
            f" {after.status.updated_replicas or 0}/{after.spec.replicas} updated",
            facts={"revision": revision_of(after), "restarted_at": stamp},
        )

    # -- rollback ---------------------------------------------------------------------------

    async def _replica_sets(
        self, client: KubernetesClient, k8s_target: KubernetesTarget, deployment: Any
    ) -> list[Any]:
        apps = await client.apps()
        labels = deployment.spec.selector.match_labels or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        listed = await client.call(
            apps.list_namespaced_replica_set, k8s_target.namespace, label_selector=selector
        )
        owned = [
            rs
            for rs in listed.items
            if any(ref.uid == deployment.metadata.uid for ref in rs.metadata.owner_references or [])
        ]
        return sorted(owned, key=revision_of)

    async def _preview_rollback(
        self, client: KubernetesClient, k8s_target: KubernetesTarget, deployment: Any
    ) -> Preview:
        name = deployment.metadata.name
        current = revision_of(deployment)
        older = [
            rs
            for rs in await self._replica_sets(client, k8s_target, deployment)
            if revision_of(rs) < current
        ]
        if not older:
            raise NotApplicable(f"{_where(name, k8s_target.namespace)} has no previous revision.")
        previous = older[-1]
        template = await client.to_dict(previous.spec.template)
        (template.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
        return Preview(
            f"roll {_where(name, k8s_target.namespace)} back from revision {current}"
            f" ({_images(deployment.spec.template)}) to revision {revision_of(previous)}"
            f" ({_images(previous.spec.template)}, replica set {previous.metadata.name})",
            {
                "deployment": name,
                "revision": current,
                "to_revision": revision_of(previous),
                "replica_set": previous.metadata.name,
                "template": template,
            },
        )

    async def _rollback(
        self, client: KubernetesClient, k8s_target: KubernetesTarget, preview: Preview
    ) -> Outcome:
        name = preview.facts["deployment"]
        apps = await client.apps()
        try:
            deployment = await client.call(
                apps.read_namespaced_deployment, name, k8s_target.namespace
            )
        except TargetError as exc:  # nothing sent yet
            return unreached(exc)
        moved = _moved(deployment, name, preview)
        if moved is not None:
            return moved
        patch = [{"op": "replace", "path": "/spec/template", "value": preview.facts["template"]}]
        await client.call(apps.patch_namespaced_deployment, name, k8s_target.namespace, patch)
        changed = f"rolled {name} back to the template of revision {preview.facts['to_revision']}"
        after = await _read_back(client, k8s_target, name)
        if after is None:
            return Outcome(True, changed, _unread(name))
        return Outcome(
            True,
            changed,
            f"{name}: revision {revision_of(after)} running {_images(after.spec.template)},"
            f" generation {after.metadata.generation}",
            facts={"revision": revision_of(after), "images": _images(after.spec.template)},
        )
