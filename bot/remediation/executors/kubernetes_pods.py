"""`kubernetes.delete_pod`: the pods named, and only those, deleted for their replica sets to
replace (bot.remediation.executors.kubernetes dispatches here).

Each pod must be one a catalogued deployment owns (through its replica set's
ownerReferences, never by labels alone), else nothing is requested. The preview lists each
pod with its UID; each is deleted with its UID as precondition, so a pod recreated under the
same name since the preview is never deleted in its place. A pod gone by the preview is left
out and said so; one gone (or refused) at the approval is said so, the others still deleted.
A list too long for a request to show whole (plans.SHOWN_WHOLE) is not requested.
"""

from __future__ import annotations

from typing import Any

from bot.catalog import KubernetesTarget
from bot.diagnostics.probes.kubernetes_owners import owned
from bot.remediation.actions import PodParams
from bot.remediation.plans import SHOWN_WHOLE, NotApplicable, Outcome, Preview
from bot.targets.errors import TargetError, TargetNotFound, TargetTimeout
from bot.targets.kubernetes import KubernetesClient


def _pods(names: list[str] | tuple[str, ...]) -> str:
    return f"pod{'' if len(names) == 1 else 's'} {', '.join(names)}"


async def preview(
    client: KubernetesClient, k8s_target: KubernetesTarget, params: PodParams
) -> Preview:
    """The pods that exist now, each with its deployment, phase and UID."""
    core = await client.core()
    namespace = k8s_target.namespace
    found: list[Any] = []
    gone: list[str] = []
    for name in params.pods:
        try:
            found.append(await client.call(core.read_namespaced_pod, name, namespace))
        except TargetNotFound:
            gone.append(name)
    if not found:
        verb = "does" if len(gone) == 1 else "do"
        raise NotApplicable(f"{_pods(gone)} {verb} not exist in namespace {namespace}.")
    # The deployment that owns each, by the controllers' ownerReferences as the diagnosis
    # reads them: labels alone also match a canary's pods, or a bare debug pod.
    mine = await owned(k8s_target, client)
    items: list[dict[str, Any]] = []
    for pod in found:
        name = pod.metadata.name
        owner = mine.deployment_of(name)
        if owner is None:
            raise NotApplicable(f"pod {name} belongs to no catalogued deployment.")
        items.append(
            {"pod": name, "uid": pod.metadata.uid, "deployment": owner, "phase": pod.status.phase}
        )
    owners = list(dict.fromkeys(item["deployment"] for item in items))
    if len(items) == 1:
        [item] = items
        summary = (
            f"delete pod {item['pod']} of deployment {item['deployment']} in namespace"
            f" {namespace} (phase {item['phase']}); its replica set replaces it"
        )
    else:
        each = " and ".join(
            ", ".join(f"{i['pod']} ({i['phase']})" for i in items if i["deployment"] == owner)
            + f" of deployment {owner}"
            for owner in owners
        )
        sets = "its replica set replaces" if len(owners) == 1 else "their replica sets replace"
        summary = f"delete {len(items)} pods, {each}, in namespace {namespace}; {sets} each"
    if gone:
        summary += f"; {_pods(gone)} gone already (left alone)"
    if len(summary) > SHOWN_WHOLE:
        # The request would show the list cut short while its approval deleted every pod.
        raise NotApplicable(
            f"the {len(params.pods)} pods' names are too long to show whole in one request"
            f" ({len(summary)} characters, at most {SHOWN_WHOLE}): ask for fewer pods at a time."
        )
    facts: dict[str, Any] = {"pods": items, "gone": gone}
    if len(owners) == 1:
        facts["deployment"] = owners[0]
    if len(items) == 1:
        # As the release before reads a preview: it may run the request in a rolling upgrade.
        facts |= {"pod": items[0]["pod"], "uid": items[0]["uid"]}
    return Preview(summary, facts)


async def delete(
    client: KubernetesClient, k8s_target: KubernetesTarget, preview: Preview
) -> Outcome:
    """Each previewed pod deleted with its UID as precondition; the outcome names the pods
    deleted (facts["deleted"]) and says of any other why it was left."""
    from kubernetes import client as k8s  # imported on first use: about 60 MB

    facts = preview.facts
    # A request previewed before pods were named together holds one pod and its UID.
    items = facts.get("pods") or [{"pod": facts["pod"], "uid": facts["uid"]}]
    core = await client.core()
    deleted: list[str] = []
    drift: list[str] = []
    failed: list[str] = []
    unknown: list[str] = []
    for item in items:
        name, uid = str(item["pod"]), str(item["uid"])
        body = k8s.V1DeleteOptions(preconditions=k8s.V1Preconditions(uid=uid))
        try:
            await client.call(core.delete_namespaced_pod, name, k8s_target.namespace, body=body)
        except TargetNotFound:
            drift.append(f"pod {name} is gone")
            continue
        except TargetTimeout as exc:
            if len(items) == 1:
                raise
            unknown.append(f"pod {name}: no answer in time ({exc})")
            continue
        except TargetError as exc:
            if "409" in exc.detail:
                drift.append(f"pod {name} was recreated since the preview (UID changed)")
                continue
            if len(items) == 1:
                raise
            failed.append(f"could not delete pod {name}: {exc}")
            continue
        deleted.append(name)
    if len(items) == 1:  # said as before pods were named together
        name, uid = str(items[0]["pod"]), str(items[0]["uid"])
        if deleted:
            return Outcome(
                True,
                f"deleted pod {name}",
                f"pod {name} ({uid}) removed",
                facts={"deleted": deleted},
            )
        now = "gone" if drift[0].endswith("is gone") else "another pod now"
        return Outcome(
            False,
            "nothing changed",
            f"pod {name} is {now}",
            drift="pod gone" if now == "gone" else drift[0],
        )
    changed = "; ".join(
        ([f"deleted {_pods(deleted)}"] if deleted else ["nothing changed"]) + failed + unknown
    )
    # As for sessions (executors.postgres): done when what still matched was deleted, the
    # pods gone since the preview said as drift; not done when any was refused or unanswered.
    return Outcome(
        bool(deleted) and not failed and not unknown,
        changed,
        f"{_pods(deleted)} removed" if deleted else "no pod removed",
        drift="; ".join(drift),
        facts={"deleted": deleted},
        known=not unknown,
    )
