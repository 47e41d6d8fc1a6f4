"""Automatic recovery: restart an unhealthy deployment by itself, a few times, then page.

For each catalog entry with `auto_recovery: {restart_unhealthy: true}`, every `check_every`:

1. One process claims the service's check in the store (recovery_storage.claim): however
   many bot processes run, one checks it; a process that dies mid-check loses the claim
   after `claim_seconds` and another checks it again.
2. The deployments are observed with the diagnostics probes (rollouts, pods).
3. recovery_plan.decide says, per deployment, what to do. A restart is recorded (and
   audited, and on the timeline of the service's open incident) before it is made, with the
   same executor as an approved `kubernetes.restart`; its outcome is recorded after.
   A deployment short only of pods waiting for a node (Unschedulable) is never restarted:
   it is said once (audit, the open incident's timeline), and paged about as in 4 once
   it has been unhealthy longer than `window`. So is a paused deployment (spec.paused),
   which a restart would not roll out.
4. When the restarts allowed in the window are used up, the bot stops restarting that
   deployment and pages a human through the escalation engine: it escalates the service's
   open incident (a line on its timeline when every level was already paged), or declares
   one, whose first escalation level is paged at once.

Restart counts and what the bot remembers between checks live in the store, not in memory.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.background import BackgroundLoop
from bot.catalog import Service
from bot.clock import Clock
from bot.diagnostics.probes import kubernetes as probes
from bot.escalation.service import EscalationService
from bot.incidents.service import IncidentService
from bot.models import Incident
from bot.policy import Policy
from bot.policy.actions import MAX_PODS
from bot.remediation import actions
from bot.remediation import recovery_storage as storage
from bot.remediation.plans import Executor, NotApplicable, Outcome, Target
from bot.remediation.recovery_plan import Decision, Health, Memory, Verdict, decide
from bot.remediation.recovery_record import (
    acting_line,
    outcome_words,
    page,
    record,
    say_held,
)
from bot.store import Store, Tx
from bot.targets.errors import TargetError, TargetTimeout
from bot.targets.kubernetes import KubernetesClient

log = logging.getLogger(__name__)

RESTART_ACTION = "kubernetes.restart"
REPLACE_ACTION = "kubernetes.delete_pod"


class _ClaimLost(Exception):
    """Another process took the check over (this one ran past its claim): stop."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What one check of one service did (tests, the log)."""

    service: str
    decisions: dict[str, Decision]
    restarted: tuple[str, ...] = ()
    paged_incident: str | None = None
    error: str = ""


class AutoRecoveryService:
    """The periodic check of every service with `auto_recovery.restart_unhealthy`."""

    def __init__(
        self,
        *,
        policy: Policy,
        store: Store,
        clock: Clock,
        incidents: IncidentService,
        escalation: EscalationService,
        executor: Executor,
        owner: str,
        restart_timeout: float = 60.0,
        claim_seconds: float = 300.0,
        poll_interval: float = 5.0,
    ) -> None:
        self.policy = policy
        self.store = store
        self.clock = clock
        self.incidents = incidents
        self.escalation = escalation
        self.executor = executor
        self.owner = owner
        self.restart_timeout = restart_timeout
        self.claim_seconds = claim_seconds
        self.poll_interval = poll_interval
        self._loop = BackgroundLoop("automatic-recovery", self.check_due, interval=poll_interval)

    def watched(self) -> dict[str, Service]:
        return {
            name: entry
            for name, entry in sorted(self.policy.services.items())
            if entry.auto_recovery.restart_unhealthy and entry.kubernetes is not None
        }

    # -- the loop ---------------------------------------------------------------------------

    def start(self) -> None:
        """Check due services every `poll_interval` seconds until stopped."""
        if self.watched():
            self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    # -- checking ---------------------------------------------------------------------------

    async def check_due(self) -> list[CheckResult]:
        """Check every watched service whose check is due and held by no other process."""
        results = []
        for name, entry in self.watched().items():
            now = self.clock.now()
            async with self.store.transaction() as tx:
                await storage.ensure(tx, name, now)
                memory = await storage.claim(tx, name, self.owner, now, self.claim_seconds)
            if memory is None:
                continue
            try:
                results.append(await self._check(name, entry, memory))
            except _ClaimLost:
                log.warning("automatic recovery of %s: the check was taken over", name)
            except BaseException:
                async with self.store.transaction() as tx:
                    await storage.release(tx, name, self.owner)
                raise
        return results

    async def observe(self, entry: Service) -> list[Health]:
        """Each catalogued deployment's replicas and crash-looping pods, read now."""
        target = entry.kubernetes
        assert target is not None
        client = KubernetesClient(target)
        try:
            rollouts = await probes.rollout_findings(target, client)
            pods = await probes.pod_findings(target, entry.thresholds, client)
        finally:
            await client.close()
        looping: dict[str, list[str]] = {}
        oom: dict[str, list[str]] = {}
        no_node: dict[str, list[dict[str, Any]]] = {}
        failing: dict[str, int] = {}
        for finding in pods:
            for pod in finding.facts.get("crashloops", ()):
                looping.setdefault(str(pod.get("deployment")), []).append(str(pod["pod"]))
                if pod.get("oom_killed"):
                    oom.setdefault(str(pod.get("deployment")), []).append(str(pod["pod"]))
            for pod in finding.facts.get("failing", ()):
                owner = str(pod.get("deployment"))
                if pod.get("unschedulable"):
                    no_node.setdefault(owner, []).append(pod)
                else:
                    failing[owner] = failing.get(owner, 0) + 1
        healths = []
        for finding in rollouts:
            name = finding.facts.get("deployment")
            if name is None:
                continue
            healths.append(
                Health(
                    deployment=str(name),
                    desired=int(finding.facts["desired"]),
                    ready=int(finding.facts["ready"]),
                    rolling_out=int(finding.facts.get("updated", 0)) < int(finding.facts["desired"])
                    and not finding.facts.get("stalled"),
                    paused=bool(finding.facts.get("paused")),
                    oom_killed=tuple(oom.get(str(name), ())),
                    crashlooping=tuple(looping.get(str(name), ())),
                    waiting_for_node=tuple(str(p["pod"]) for p in no_node.get(str(name), ())),
                    scheduler_message=next(
                        (
                            str(p["scheduler_message"])
                            for p in no_node.get(str(name), ())
                            if p.get("scheduler_message")
                        ),
                        "",
                    ),
                    failing=failing.get(str(name), 0),
                )
            )
        return healths

    async def _check(self, name: str, entry: Service, memory: dict[str, Memory]) -> CheckResult:
        settings = entry.auto_recovery
        try:
            healths = await self.observe(entry)
        except TargetError as exc:
            # Nothing decided on what could not be seen; the next check tries again.
            log.warning("automatic recovery of %s: could not read its deployments: %s", name, exc)
            now = self.clock.now()
            async with self.store.transaction() as tx:
                await self._finish(tx, name, now, settings.check_every.seconds, memory, str(exc))
            return CheckResult(name, {}, error=str(exc))
        now = self.clock.now()
        incident = await self._open_incident(name)
        decisions: dict[str, Decision] = {}
        to_restart: list[tuple[int, str, tuple[str, ...]]] = []
        async with self.store.transaction() as tx:
            window_start = now - settings.window.as_timedelta()
            for health in healths:
                made = await storage.restarts_since(tx, name, health.deployment, window_start)
                before = memory.get(health.deployment, Memory())
                decision = decide(
                    health, before, made, settings.max_restarts, now, settings.window.as_timedelta()
                )
                decisions[health.deployment] = decision
                if decision.verdict in (Verdict.NO_NODE, Verdict.PAUSED):
                    log.info(
                        "automatic recovery of %s: deployment %s: %s",
                        name,
                        health.deployment,
                        decision.reason,
                    )
                    await say_held(
                        tx, self.clock.now(), incident, name, health, decision, before, settings
                    )
                if decision.verdict is Verdict.GIVE_UP:
                    continue  # remembered once the human is paged (at least once, never lost)
                memory[health.deployment] = decision.memory
                if decision.verdict in (Verdict.RESTART, Verdict.REPLACE_PODS):
                    pods = health.crashlooping if decision.verdict is Verdict.REPLACE_PODS else ()
                    restart_id = await storage.add_restart(
                        tx, name, health.deployment, now, decision.reason, _id(incident), pods
                    )
                    to_restart.append((restart_id, health.deployment, pods))
                    await record(
                        tx,
                        self.clock.now(),
                        incident,
                        name,
                        "auto_recovery.restart",
                        acting_line(name, health.deployment, pods, decision.reason, settings),
                        {"deployment": health.deployment, "restart": restart_id}
                        | ({"pods": list(pods)} if pods else {}),
                    )
            if not await storage.save_memory(tx, name, self.owner, now, memory):
                raise _ClaimLost
        restarted = []
        for restart_id, deployment, pods in to_restart:
            replaced: tuple[str, ...] = ()
            if pods:
                outcome, replaced = await self._replace(name, entry, pods)
            else:
                outcome = await self._restart(name, entry, deployment)
            await self._restart_done(
                name, incident, restart_id, deployment, outcome, pods, replaced
            )
            if outcome.ok:
                restarted.append(deployment)
        given_up = {d: dec for d, dec in decisions.items() if dec.verdict is Verdict.GIVE_UP}
        paged = None
        if given_up:
            paged = await page(
                self.store,
                self.clock.now(),
                self.escalation,
                self.incidents,
                name,
                entry,
                incident,
                given_up,
            )
            for deployment, decision in given_up.items():
                memory[deployment] = decision.memory
        summary = "; ".join(f"{d}: {dec.verdict.value}" for d, dec in decisions.items())
        async with self.store.transaction() as tx:
            await self._finish(
                tx, name, self.clock.now(), settings.check_every.seconds, memory, summary
            )
        return CheckResult(name, decisions, tuple(restarted), paged)

    async def _finish(
        self,
        tx: Tx,
        name: str,
        now: datetime,
        every: float,
        memory: dict[str, Memory],
        result: str,
    ) -> None:
        next_at = now + timedelta(seconds=every)
        if not await storage.finish(tx, name, self.owner, now, next_at, memory, result[:500]):
            raise _ClaimLost

    # -- acting -----------------------------------------------------------------------------

    async def _replace(
        self, name: str, entry: Service, pods: tuple[str, ...]
    ) -> tuple[Outcome, tuple[str, ...]]:
        """The crash-looping pods deleted, for their ReplicaSet to recreate, by the action an
        approved "Replace 3 crash-looping pods" of /diagnose runs (`kubernetes.delete_pod`,
        each pod's UID as precondition, MAX_PODS a request); one outcome for them all, and
        the pods that were replaced (some may be when another was refused)."""
        batches = [pods[i : i + MAX_PODS] for i in range(0, len(pods), MAX_PODS)]
        outcomes = [
            await self._act(name, entry, REPLACE_ACTION, {"pods": ",".join(batch)})
            for batch in batches
        ]
        replaced = tuple(str(pod) for o in outcomes for pod in o.facts.get("deleted", ()))
        if len(outcomes) == 1:
            return outcomes[0], replaced
        return Outcome(
            all(o.ok for o in outcomes),
            "; ".join(o.changed for o in outcomes),
            "; ".join(o.after for o in outcomes),
            drift="; ".join(o.drift for o in outcomes if o.drift),
            known=all(o.known for o in outcomes),
        ), replaced

    async def _restart(self, name: str, entry: Service, deployment: str) -> Outcome:
        """A rollout restart through the approved action's executor (dry run, then change)."""
        return await self._act(name, entry, RESTART_ACTION, {"deployment": deployment})

    async def _act(self, name: str, entry: Service, action: str, given: dict[str, str]) -> Outcome:
        target = Target(actions.spec_for(action), name, entry)
        params = actions.validate(target.spec, given)
        previewed = False
        try:
            async with asyncio.timeout(self.restart_timeout):
                preview = await self.executor.preview(target, params)
                previewed = True
                return await self.executor.execute(target, params, preview)
        except (TimeoutError, TargetTimeout) as exc:
            late = str(exc) or f"timed out after {self.restart_timeout:g} s"
            if not previewed:  # nothing was sent yet
                return Outcome(False, "failed", f"{late} (before any change was sent)")
            # The restart was sent without an answer: it may have been made, as for
            # kubernetes.restart approved by a person (bot.remediation.running).
            return Outcome(False, f"no answer in time ({late})", "not known: check it", known=False)
        except (TargetError, NotApplicable) as exc:
            return Outcome(False, "failed", str(exc))

    async def _restart_done(
        self,
        name: str,
        incident: Incident | None,
        restart_id: int,
        deployment: str,
        outcome: Outcome,
        pods: tuple[str, ...] = (),
        replaced: tuple[str, ...] = (),
    ) -> None:
        now = self.clock.now()
        async with self.store.transaction() as tx:
            status = "succeeded" if outcome.ok else "failed" if outcome.known else "unknown"
            await storage.finish_restart(tx, restart_id, status, outcome.changed, now)
            state = outcome_words(status, pods, replaced)
            await record(
                tx,
                self.clock.now(),
                incident,
                name,
                "auto_recovery.outcome",
                f"Automatic recovery {state} deployment {deployment} of {name}:"
                f" {outcome.changed}{f' ({outcome.drift})' if outcome.drift else ''};"
                f" now {outcome.after}",
                {"deployment": deployment, "restart": restart_id, "outcome": outcome.to_json()},
                outcome="ok" if outcome.ok else status,
            )

    # -- the record -------------------------------------------------------------------------

    async def _open_incident(self, name: str) -> Incident | None:
        """The service's most recent open incident, if any; never a drill (practice must not
        carry a real restart, nor be what a human is paged by when recovery gives up)."""
        found = await self.incidents.open_naming(name)
        return found[0] if found else None


def _id(incident: Incident | None) -> str | None:
    return incident.id if incident is not None else None
