"""What automatic recovery writes down (bot.remediation.recovery), and how it pages a human
when it stops restarting a deployment."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot import audit
from bot.audit import AuditRecord
from bot.catalog import AutoRecovery, Service
from bot.errors import Conflict
from bot.escalation.service import EscalationService
from bot.incidents import journal
from bot.incidents.schemas import DeclareIncident
from bot.incidents.service import IncidentService
from bot.models import SYSTEM, Incident
from bot.remediation.recovery_plan import Decision, Health, Memory, Verdict
from bot.store import Store, Tx


async def page(
    store: Store,
    now: datetime,
    escalation: EscalationService,
    incidents: IncidentService,
    name: str,
    entry: Service,
    incident: Incident | None,
    given_up: dict[str, Decision],
) -> str:
    """Escalate the service's open incident, or declare one: either way a human is paged."""
    settings = entry.auto_recovery
    # Each deployment is paged about for its own reason: an OOMKilled crash loop given up at
    # the same check as one out of restarts was paged as "after 2 restarts", both of them.
    kinds: dict[str, dict[str, Decision]] = {}
    for deployment, decision in given_up.items():
        kinds.setdefault(_kind(decision), {})[deployment] = decision
    what = "; ".join(f"deployment {d}: {dec.reason}" for d, dec in given_up.items())
    if len(kinds) == 1:
        [kind] = kinds
        reason = f"automatic recovery stopped{_stopped(kind, settings)}: {what}"
    else:
        reason = "automatic recovery stopped: " + "; ".join(
            _stopped(kind, settings).removeprefix(": ").lstrip()
            + ": "
            + "; ".join(f"deployment {d}: {dec.reason}" for d, dec in decisions.items())
            for kind, decisions in kinds.items()
        )
    if incident is not None:
        try:
            await escalation.escalate(incident.id, SYSTEM, reason=reason)
        except Conflict as exc:
            async with store.transaction() as tx:
                await record(
                    tx,
                    now,
                    incident,
                    name,
                    "auto_recovery.give_up",
                    f"Automatic{reason.removeprefix('automatic')} ({exc})",
                    {"deployments": sorted(given_up)},
                )
        return incident.id
    title = f"{name}: " + "; ".join(
        _title(kind, ", ".join(sorted(decisions)), settings) for kind, decisions in kinds.items()
    )
    declared = await incidents.declare(
        DeclareIncident(
            severity=settings.severity,
            title=title[:150],
            impact=what[:1000],
            services=(name,),
        ),
        SYSTEM,
    )
    return declared.id


def _kind(decision: Decision) -> str:
    """Why recovery gave up on a deployment, as a key of _stopped and _title."""
    if decision.oom:
        return "oom"
    if decision.no_node:
        return "no_node"
    if decision.paused:
        return "paused"
    return "replaced" if decision.replaced else "restarts"


def _stopped(kind: str, settings: AutoRecovery) -> str:
    """What follows "automatic recovery stopped" in the page, for deployments of `kind`."""
    window, most = settings.window, settings.max_restarts
    return {
        # Never restarted: say so, not "after N restarts", so nobody looks for a restart.
        "oom": ": killed at the memory limit (OOMKilled), which a restart only repeats",
        "no_node": f": pods waiting for a node for over {window}, which no restart can place",
        # A person paused it, a person must resume it.
        "paused": f": unhealthy and paused for over {window} (a restart rolls nothing out"
        " until kubectl rollout resume)",
        # Beside pods waiting for a node only pods were replaced: no restart to look for.
        "replaced": f" after {most} replacements of crash-looping pods in {window}",
        "restarts": f" after {most} restarts in {window}",
    }[kind]


def _title(kind: str, deployments: str, settings: AutoRecovery) -> str:
    """The declared incident's title, for deployments of `kind`."""
    window, most = settings.window, settings.max_restarts
    return {
        "oom": f"{deployments} killed at its memory limit (OOMKilled)",
        "no_node": f"{deployments} waiting for a node for over {window}",
        "paused": f"{deployments} paused and unhealthy for over {window}",
        "replaced": f"{deployments} crash-looping after {most} automatic pod replacements",
        "restarts": f"{deployments} unhealthy after {most} automatic restarts",
    }[kind]


async def record(
    tx: Tx,
    now: datetime,
    incident: Incident | None,
    service: str,
    action: str,
    line: str,
    args: dict[str, Any],
    *,
    outcome: str = "ok",
) -> None:
    """The audit entry, on the service's open incident's timeline when there is one."""
    args = {"service": service, **args}
    if incident is not None:
        await journal.record(
            tx,
            now,
            incident.id,
            actor=SYSTEM.user_id,
            kind=action.replace(".", "_"),
            text=line,
            action=action,
            args=args,
            outcome=outcome,
        )
        return
    await audit.append(
        tx,
        now,
        AuditRecord(
            actor=SYSTEM.user_id,
            action=action,
            target=f"service:{service}",
            outcome=outcome,
            args=args,
        ),
    )


async def say_held(
    tx: Tx,
    now: datetime,
    incident: Incident | None,
    name: str,
    health: Health,
    decision: Decision,
    before: Memory,
    settings: AutoRecovery,
) -> None:
    """Say, once per stretch, why a deployment the bot will not restart is left alone:
    waiting for a node (no restart places a pod) or paused (a restart rolls nothing out)."""
    deployment = health.deployment
    paged = f"(a human is paged if it lasts over {settings.window})"
    if decision.verdict is Verdict.NO_NODE and before.waiting_since is None:
        await record(
            tx,
            now,
            incident,
            name,
            "auto_recovery.no_node",
            f"Automatic recovery: not restarting deployment {deployment} of {name}:"
            f" {health.no_node_words()}; a restart cannot make room {paged}",
            {"deployment": deployment, "pods": list(health.waiting_for_node)},
        )
    if decision.verdict is Verdict.PAUSED and before.paused_since is None:
        await record(
            tx,
            now,
            incident,
            name,
            "auto_recovery.paused",
            f"Automatic recovery: not restarting deployment {deployment} of {name}: it is"
            f" paused ({health.ready}/{health.desired} ready); a restart would roll nothing out"
            f" until someone runs kubectl rollout resume {paged}",
            {"deployment": deployment},
        )


def acting_line(
    name: str, deployment: str, pods: tuple[str, ...], reason: str, settings: AutoRecovery
) -> str:
    """The line said before a restart (or a replacement of crash-looping `pods`), with the
    page that follows when those allowed in the window do not fix it, as the wait for a node
    says its own (say_held): the timeline must not read as if the bot would go on alone."""
    doing = f"replacing {_pods(pods)} of" if pods else "restarting"
    made = "replacements" if pods else "restarts"
    return (
        f"Automatic recovery: {doing} deployment {deployment} of {name} ({reason}; a human"
        f" is paged if {settings.max_restarts} {made} in {settings.window} do not fix it)"
    )


def outcome_words(status: str, pods: tuple[str, ...], replaced: tuple[str, ...]) -> str:
    """What a restart or a pod replacement did, for its timeline line ("restarted", "replaced
    pod a (could not replace pod b) of"...), `status` being its restart row's."""
    if not pods:
        return {
            "succeeded": "restarted",
            "failed": "could not restart",
            "unknown": "may or may not have restarted",
        }[status]
    undone = {
        "succeeded": "replaced",
        "failed": "could not replace",
        "unknown": "may or may not have replaced",
    }[status]
    rest = tuple(pod for pod in pods if pod not in replaced)
    if status == "succeeded" and replaced and rest:
        # Done with a pod gone (or recreated) since it was seen: left alone, not "replaced"
        # (the outcome's drift says why).
        return f"replaced {_pods(replaced)} (left {_pods(rest)} alone) of"
    if replaced and rest:
        # Some were replaced, another refused: each said as it went, not all as failed (a
        # reader looked for a crash loop in a pod that was gone).
        return f"replaced {_pods(replaced)} ({undone} {_pods(rest)}) of"
    return f"{undone} {_pods(pods)} of"


def _pods(names: tuple[str, ...]) -> str:
    return f"pod{'' if len(names) == 1 else 's'} {', '.join(names)}"
