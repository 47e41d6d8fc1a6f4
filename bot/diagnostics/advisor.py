"""The troubleshooting guides' decision tree: from graded findings to suggested remediations.

Rules, best first (a lower rank is shown first; each suggestion names the finding behind it):
 1. Response time or error rate over its limit, and the database shows blocking or long
    queries -> the database first: end the blocking backend (rank 10), the long queries (12).
 2. A crash-looping pod -> its log is in the thread. Any killed at its memory limit (OOMKilled):
    the runbook's memory path, raise the limit (14, by hand: it lives in the manifest) and
    scale out (15); roll back only during a rollout (17); never a restart, which only
    repeats the kill. Otherwise roll its deployment back when a rollout is in progress (15,
    restart 16), else restart it (15, roll back 16). No rollback without an older revision
    to return to (the executor would refuse it). Beside pods of its deployment waiting for a
    node, not a restart (it would replace the ready pods too, each needing a node): replace
    the crash-looping pods only (delete_pod, at the restart's rank), as automatic recovery.
 3. ECS running below desired -> force a new deployment (18).
 4. Blocking or long queries without a slow front door -> still suggested (20, 22).
 5. CPU over its limit (Kubernetes usage, CloudWatch) -> scale out: the deployment (25), the
    ECS service (26), the Auto Scaling group (27), never beyond the catalog's maximum.
 6. Memory over its limit -> raise the limit (30, by hand) and scale out (31); Redis full or
    evicting under a policy that refuses writes -> maxmemory-policy allkeys-lru (28).
 7. A deployment not ready without a crash loop -> restart it (33); never while its rollout is
    under way (a restart starts it over), unless Kubernetes marked it stalled
    (ProgressDeadlineExceeded): then roll it back (32, with an older revision) or restart it;
    never when it is short only of pods waiting for a node (Unschedulable: a scale-out waiting
    on the cluster autoscaler), which a restart cannot place; never when it is paused
    (`kubectl rollout pause`): a restart rolls nothing out, a rollback is refused, until a
    person resumes it (the finding says so). The same for a crash loop in a paused one.
 8. Sessions idle in transaction (35), idle connections or connections near the limit (36).
 9. Cache hit ratio under its limit -> warm the cache (40, by hand).
10. Response time over its limit and nothing above explains it -> check network and I/O (90).

A PostgreSQL suggestion acts on exactly what its finding flagged: the finding's threshold in
seconds (never rounded to minutes) and the pids it named, less those remediation would
refuse to end (a superuser's session without `terminate_superuser`, another database's).
When none is left, nothing is offered: the finding's summary already says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.catalog import Service
from bot.diagnostics import advice_kubernetes
from bot.diagnostics.describe import describe, listed
from bot.diagnostics.finding_reads import bad, because, count, endable, over_s
from bot.diagnostics.findings import Finding, Grade, Suggestion
from bot.durations import humanize_seconds

__all__ = ["MAX_SUGGESTIONS", "advise", "describe"]

MAX_SUGGESTIONS = 5


def advise(service: str, entry: Service, findings: Sequence[Finding]) -> list[Suggestion]:
    """Suggestions, best first, at most MAX_SUGGESTIONS, without repeats."""
    ranked: list[tuple[int, Suggestion]] = []

    def add(
        rank: int, finding: Finding, action: str, label: str, would: str, **params: Any
    ) -> None:
        if action.startswith("kubernetes.") and params.get("deployment") not in (
            entry.kubernetes.deployments if entry.kubernetes else ()
        ):
            # Remediation acts only on the deployments the catalog names (a `selector`
            # entry's are found, not named): a button it would refuse is no suggestion.
            return
        ranked.append(
            (
                rank,
                Suggestion(
                    action=action,
                    label=label[:75],
                    would=would,
                    because=because(finding),
                    finding=finding.check,
                    params=params,
                    advice=action.startswith("advice."),
                ),
            )
        )

    slow = [f for f in bad(findings, "http") if f.facts.get("latency_ms") is not None]
    front_door_bad = bool(slow) or any(f.facts.get("failed") for f in bad(findings, "http"))
    db_rank = 0 if front_door_bad else 10
    explained = False

    for f in bad(findings, "postgres.blocking"):
        explained = True
        for pid in endable(f, "blocking_pids")[:2]:
            add(
                10 + db_rank,
                f,
                "postgres.terminate_backend",
                f"Terminate blocking backend {pid}",
                f"pg_terminate_backend({pid}) on {service}'s database: ends the session holding"
                f" the lock (never the bot's own)",
                pid=pid,
                # A blocker idle in its transaction has no query to cancel: end the session.
                terminate=True,
            )
    for f in bad(findings, "postgres.long_queries"):
        explained = True
        pids, over = endable(f), over_s(f)
        if pids:
            add(
                12 + db_rank,
                f,
                "postgres.terminate_long_queries",
                f"Terminate {count(len(pids), 'query', 'queries')} running over"
                f" {humanize_seconds(over)}",
                f"pg_terminate_backend for the active queries on {service}'s database running"
                f" longer than {humanize_seconds(over)}: {listed(pids)}",
                older_than_s=over,
                pids=pids,
            )

    k8s = entry.kubernetes
    rollouts = {f.facts.get("deployment"): f for f in findings if f.check == "kubernetes.rollout"}

    def scale_out(rank: int, f: Finding, deployment: str, why: str) -> None:
        assert k8s is not None
        advice_kubernetes.scale_out(add, k8s, rollouts, rank, f, deployment, why)

    def raise_memory(rank: int, f: Finding, deployment: str, container: dict[str, Any]) -> None:
        assert k8s is not None
        advice_kubernetes.raise_memory(add, k8s, rank, f, deployment, container)

    no_node, failing = advice_kubernetes.not_ready_by_deployment(findings)
    crashed: set[str] = set()
    for f in bad(findings, "kubernetes.pods"):
        for loop in f.facts.get("crashloops", []):
            deployment = loop.get("deployment")
            if k8s is None or not deployment or deployment in crashed:
                continue
            crashed.add(deployment)
            explained = True
            rollout = rollouts.get(deployment)
            in_rollout = bool(
                rollout and rollout.facts.get("updated", 0) < rollout.facts.get("desired", 0)
            )
            # Without an older replica set the executor would refuse the rollback.
            has_previous = not rollout or bool(rollout.facts.get("previous_revision", 1))
            # Paused: a restart rolls nothing out and a rollback is refused until resumed.
            paused = bool(rollout and rollout.facts.get("paused"))
            where = f"{k8s.namespace}/{deployment}"
            # Any of its crash-looping pods killed at its memory limit, not only the first:
            # automatic recovery, seeing one, restarts nothing (bot.remediation.recovery_plan).
            oom = [
                c
                for other in f.facts.get("crashloops", [])
                if other.get("deployment") == deployment
                for c in other.get("containers", [])
                if c.get("name") in other.get("oom_killed", [])
            ]
            if oom:
                raise_memory(14, f, deployment, oom[0])
                scale_out(
                    15,
                    f,
                    deployment,
                    ": the load spread over more pods, each within"
                    f" its {oom[0].get('memory_limit') or 'memory'} limit",
                )
                if in_rollout and has_previous and not paused:
                    add(
                        17,
                        f,
                        "kubernetes.rollback",
                        f"Roll back {deployment}",
                        f"roll deployment {where} back to its previous revision (rollout undo),"
                        " should the new revision need more memory than the old",
                        deployment=deployment,
                    )
                continue
            if paused:
                continue
            if has_previous:
                add(
                    15 if in_rollout else 16,
                    f,
                    "kubernetes.rollback",
                    f"Roll back {deployment}",
                    f"roll deployment {where} back to its previous revision (rollout undo)",
                    deployment=deployment,
                )
            if no_node.get(deployment):
                # Beside pods waiting for a node: not a restart (it would replace the ready
                # pods too, each needing a node), only the crash-looping pods, as recovery.
                rank = 16 if in_rollout else 15
                advice_kubernetes.replace_looping(add, k8s, rank, f, deployment, no_node)
                continue
            add(
                16 if in_rollout else 15,
                f,
                "kubernetes.restart",
                f"Restart {deployment}",
                f"rollout restart of deployment {where} (pods replaced one by one)",
                deployment=deployment,
            )

    for f in bad(findings, "aws.ecs"):
        explained = True
        add(
            18,
            f,
            "ecs.force_new_deployment",
            f"Redeploy ECS {f.facts['service']}",
            f"force a new deployment of ECS service {f.facts['cluster']}/{f.facts['service']}"
            f" (desired {f.facts['desired']}, running {f.facts['running']})",
            cluster=f.facts["cluster"],
            service=f.facts["service"],
        )

    cpu = bad(findings, "kubernetes.cpu") + bad(findings, "aws.cpu")
    for f in cpu[:1]:
        explained = True
        if k8s is not None and k8s.deployments:
            scale_out(25, f, f.facts.get("deployment") or k8s.deployments[0], "")
        ecs = entry.aws.ecs if entry.aws else None
        ecs_facts = next((e.facts for e in findings if e.check == "aws.ecs"), None)
        if ecs is not None and ecs_facts:
            desired = int(ecs_facts["desired"])
            add(
                26,
                f,
                "ecs.set_desired_count",
                f"Scale ECS {ecs.service} to {desired + 1}",
                f"set ECS service {ecs.cluster}/{ecs.service} desired count"
                f" {desired} -> {desired + 1}",
                cluster=ecs.cluster,
                service=ecs.service,
                desired=desired + 1,
            )
        asg = next((e.facts for e in findings if e.check == "aws.autoscaling"), None)
        if asg and asg["desired"] < asg["max"]:
            add(
                27,
                f,
                "autoscaling.set_desired_capacity",
                f"Scale {asg['group']} to {asg['desired'] + 1}",
                f"set Auto Scaling group {asg['group']} desired capacity {asg['desired']} ->"
                f" {asg['desired'] + 1} (max {asg['max']})",
                group=asg["group"],
                desired=asg["desired"] + 1,
            )

    for f in bad(findings, "kubernetes.memory"):
        explained = True
        deployment = f.facts.get("deployment") or (
            k8s.deployments[0] if k8s and k8s.deployments else None
        )
        if k8s is not None and deployment:
            limit = f"{f.facts['limit_mib']}Mi" if f.facts.get("limit_mib") else None
            raise_memory(30, f, deployment, {"memory_limit": limit})
            scale_out(31, f, deployment, ": the load spread over more pods")
    for f in bad(findings, "redis.memory") + bad(findings, "redis.evictions"):
        policy = str(f.facts.get("policy", ""))
        if policy in (
            "noeviction",
            "volatile-lru",
            "volatile-ttl",
            "volatile-random",
            "volatile-lfu",
        ):
            explained = True
            add(
                28,
                f,
                "redis.set_maxmemory_policy",
                "Set Redis maxmemory-policy allkeys-lru",
                f"CONFIG SET maxmemory-policy allkeys-lru on {service}'s Redis (now {policy})",
                policy="allkeys-lru",
            )
            break

    for f in rollouts.values() if k8s else []:
        deployment = f.facts.get("deployment")
        # No deployment named: the check could not read it, which says nothing of its state.
        if f.grade > Grade.OK and deployment and deployment not in crashed and k8s is not None:
            explained = True
            desired, ready = int(f.facts.get("desired", 0)), int(f.facts.get("ready", 0))
            if f.facts.get("paused"):
                # Paused by a person: a restart rolls nothing out until it is resumed.
                continue
            if int(f.facts.get("updated", desired)) < desired:
                # A rollout under way is left to finish: a restart would start it over.
                # Stalled past its progressDeadlineSeconds, as Kubernetes says: roll it back
                # first (when there is an older revision to return to), or restart it.
                if not f.facts.get("stalled"):
                    continue
                if f.facts.get("previous_revision", 1):
                    add(
                        32,
                        f,
                        "kubernetes.rollback",
                        f"Roll back {deployment}",
                        f"roll deployment {k8s.namespace}/{deployment} back to its previous"
                        " revision (rollout undo): its rollout stalled (ProgressDeadlineExceeded)",
                        deployment=deployment,
                    )
            elif (
                no_node.get(deployment)
                and not failing.get(deployment)
                and ready + no_node[deployment] >= desired
            ):
                # Short only of pods waiting for a node (a scale-out waiting on the cluster
                # autoscaler): a restart cannot place them, it only adds pods to place.
                continue
            add(
                33,
                f,
                "kubernetes.restart",
                f"Restart {deployment}",
                f"rollout restart of deployment {k8s.namespace}/{deployment}",
                deployment=deployment,
            )

    for f in bad(findings, "postgres.idle_in_transaction"):
        pids, over = endable(f), over_s(f)
        if pids:
            add(
                35,
                f,
                "postgres.terminate_idle_in_transaction",
                f"End {count(len(pids), 'session', 'sessions')} idle in transaction >"
                f" {humanize_seconds(over)}",
                f"pg_terminate_backend for the sessions on {service}'s database idle in"
                f" transaction longer than {humanize_seconds(over)}: {listed(pids)}",
                older_than_s=over,
                pids=pids,
            )
    # Connections near the limit are relieved by ending the idle ones the idle check named;
    # with none named, ending "idle connections" would end nothing.
    idle = next((f for f in findings if f.check == "postgres.idle" and endable(f)), None)
    for f in bad(findings, "postgres.idle") + bad(findings, "postgres.connections"):
        if idle is None:
            break
        pids, over = endable(idle), over_s(idle)
        add(
            36,
            f,
            "postgres.terminate_idle",
            f"End {count(len(pids), 'idle connection', 'idle connections')} >"
            f" {humanize_seconds(over)}",
            f"pg_terminate_backend for the connections on {service}'s database idle longer than"
            f" {humanize_seconds(over)}: {listed(pids)}",
            older_than_s=over,
            pids=pids,
        )
        break

    for f in bad(findings, "redis.hit_ratio"):
        add(
            40,
            f,
            "advice.warm_cache",
            "Warm the cache",
            "by hand: pre-load the hot keys (the runbook's cache warm-up); nothing to run",
        )

    if slow and not explained:
        add(
            90,
            slow[0],
            "advice.check_network",
            "Check network and I/O",
            "by hand: nothing in the catalog explains the slow answers; look at the network"
            " path and disk I/O",
        )

    seen: set[tuple[str, str]] = set()
    suggestions: list[Suggestion] = []
    for _, suggestion in sorted(ranked, key=lambda item: item[0]):
        key = (suggestion.action, repr(sorted(suggestion.params.items())))
        if key not in seen:
            seen.add(key)
            suggestions.append(suggestion)
    return suggestions[:MAX_SUGGESTIONS]
