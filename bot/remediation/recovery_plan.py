"""Automatic recovery: what to do with one deployment at one check, as a pure function.

Nothing here reads the store, the clock or Kubernetes. The recovery service observes the
deployment, reads what it remembered (in the store) and the restarts it made in the window,
calls `decide`, and writes what it returns in one transaction.

Rules (`auto_recovery:` of a catalog entry):

- Healthy is ready = desired replicas and no pod of the deployment in CrashLoopBackOff. A
  healthy deployment is left alone, and whatever was remembered about it is forgotten (a
  later failure starts a fresh count of sightings, and the bot may restart it again).
- Too few ready replicas must be seen at two checks in a row (longer than one check) before
  the bot acts: a pod being rescheduled is not a failure. Nor is a rollout in progress (fewer
  updated replicas than desired), however many checks it takes, until Kubernetes marks it
  stalled (ProgressDeadlineExceeded): a restart on top of a deploy only starts it again. A
  crash loop is acted on at once: the kubelet has already seen the container fail several
  times.
- Nor is a deployment short only of pods waiting for a node (Pending, `PodScheduled=False`,
  reason Unschedulable: a scale-out waiting on the cluster autoscaler): a restart cannot
  place them, it only adds pods to place, under load. It is never restarted for that; once
  it has been unhealthy longer than `window`, the bot gives up on it as below (a human is
  paged, told why), still without a restart. That clock runs from the first unhealthy
  sighting of any kind: pods flapping between waiting for a node and failing keep it.
- A crash loop beside pods waiting for a node is not a deployment to restart: a rollout
  restart would replace the ready pods too, each new one needing a node. Only the
  crash-looping pods are replaced (deleted, recreated by their ReplicaSet), at once, each
  time counted as a restart below; the wait for a node goes on, on the same clock, and is
  said again (with the page that follows it) once the crash loop is gone.
- An unhealthy deployment is restarted while fewer than `max_restarts` restarts of it were
  made within `window`; after a restart the sightings start again, so the new pods get one
  check to come up.
- Nor is a crash loop killed at its memory limit (OOMKilled): a restart only repeats the
  kill (the runbook's memory path, as /diagnose advises). The bot gives up on it at once,
  as below, without a restart.
- Nor is a paused deployment (`spec.paused`, mid-rollout or not): a restart only edits its
  pod template, rolled out when a person resumes it. Once it has been unhealthy longer than
  `window`, the bot gives up on it as below, without a restart.
- When the restarts are used up, the bot gives up once: it stops restarting that deployment
  and a human is paged. It stays given up until the deployment is seen healthy.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from bot.durations import humanize_seconds


class Verdict(StrEnum):
    HEALTHY = "healthy"  # nothing wrong: forget what was remembered
    WATCH = "watch"  # first sighting of too few ready replicas: look again next check
    NO_NODE = "no_node"  # short only of pods waiting for a node: never restarted for it
    PAUSED = "paused"  # paused (spec.paused): a restart would roll nothing out; never made
    RESTART = "restart"  # restart it now
    REPLACE_PODS = "replace_pods"  # replace only its crash-looping pods (others wait for a node)
    GIVE_UP = "give_up"  # restarts used up: stop, declare or update an incident, page
    GIVEN_UP = "given_up"  # already given up: nothing more until it is healthy


@dataclass(frozen=True, slots=True)
class Health:
    """One deployment as observed now."""

    deployment: str
    desired: int
    ready: int
    crashlooping: tuple[str, ...] = ()  # pods of the deployment in CrashLoopBackOff
    rolling_out: bool = False  # a rollout in progress that Kubernetes has not marked stalled
    waiting_for_node: tuple[str, ...] = ()  # pods Pending as Unschedulable (no node fits yet)
    scheduler_message: str = ""  # why, as the scheduler said it ("0/3 nodes are available")
    failing: int = 0  # pods not ready for another reason (unready, crash-looping, starting)
    paused: bool = False  # spec.paused: rollouts (a restart's too) wait for `rollout resume`
    oom_killed: tuple[str, ...] = ()  # crash-looping pods last killed at their memory limit

    @property
    def healthy(self) -> bool:
        return self.ready >= self.desired and not self.crashlooping

    @property
    def short_of_nodes_only(self) -> bool:
        """Every missing ready replica is a pod waiting for a node, and nothing else fails."""
        return (
            bool(self.waiting_for_node)
            and not self.crashlooping
            and not self.failing
            and self.ready + len(self.waiting_for_node) >= self.desired
        )

    def no_node_words(self) -> str:
        """`2 pods waiting for a node: Unschedulable: 0/3 nodes are available: ...`."""
        n = len(self.waiting_for_node)
        text = f"{n} pod{'' if n == 1 else 's'} waiting for a node: Unschedulable"
        return text + (f": {self.scheduler_message}" if self.scheduler_message else "")

    def describe(self) -> str:
        text = f"{self.ready}/{self.desired} ready"
        if self.crashlooping:
            text += f", {len(self.crashlooping)} in CrashLoopBackOff ({self.crashlooping[0]})"
        if self.waiting_for_node:
            text += f", {self.no_node_words()}"
        if self.paused:
            text += ", paused (kubectl rollout resume to go on)"
        elif self.rolling_out:
            text += ", rollout in progress"
        return text


@dataclass(frozen=True, slots=True)
class Memory:
    """What the bot remembers of one deployment between checks (stored, so restart-safe)."""

    # When this stretch of unhealthiness began, whatever its kind (failing, crash-looping,
    # waiting for a node): the clock of `window` for what a restart cannot fix. Kept while it
    # changes kind (pods flapping between waiting for a node and failing restarted it, so
    # the bot never paged); forgotten when healthy, after a restart, and during a rollout.
    unhealthy_since: datetime | None = None
    gave_up_at: datetime | None = None
    waiting_since: datetime | None = None  # first seen waiting for a node (said once)
    paused_since: datetime | None = None  # first seen paused and unhealthy (said once)
    failing_since: datetime | None = None  # first of the checks in a row seeing it fail


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    memory: Memory
    reason: str
    no_node: bool = False  # about pods waiting for a node (a give-up made no restart)
    paused: bool = False  # about a paused deployment (a give-up made no restart)
    oom: bool = False  # about a crash loop killed at its memory limit (no restart made)
    replaced: bool = False  # its crash-looping pods were replaced, the deployment not restarted


def decide(
    health: Health,
    memory: Memory,
    restarts_in_window: int,
    max_restarts: int,
    now: datetime,
    window: timedelta = timedelta(hours=1),
) -> Decision:
    """The verdict for one deployment at one check, and what to remember until the next
    (`window`: how long pods may wait for a node before a human is paged about them)."""
    if health.healthy:
        return Decision(Verdict.HEALTHY, Memory(), health.describe())
    if memory.gave_up_at is not None:
        return Decision(Verdict.GIVEN_UP, memory, health.describe())
    if health.oom_killed:
        # Killed at its memory limit: a restart (or a fresh pod) only repeats the kill, as
        # /diagnose says (it offers no Restart). The memory path is a person's: paged now.
        return Decision(
            Verdict.GIVE_UP,
            Memory(unhealthy_since=memory.unhealthy_since or now, gave_up_at=now),
            f"{health.describe()}; {', '.join(health.oom_killed)} OOMKilled at its memory"
            " limit: not restarted (a restart only repeats the kill; raise the limit or"
            " scale out)",
            oom=True,
        )
    if health.paused:
        # Paused by a person, mid-rollout or not: a restart only edits the template, rolled
        # out when resumed, and the pause is theirs to end. Never restarted; a person is
        # paged once it has been unhealthy longer than `window` (it waited for ever, unsaid).
        since = memory.unhealthy_since or now
        waited = now - since
        held = replace(memory, unhealthy_since=since, paused_since=memory.paused_since or now)
        if waited > window:
            return Decision(
                Verdict.GIVE_UP,
                replace(held, gave_up_at=now),
                f"{health.describe()}, unhealthy for {humanize_seconds(waited.total_seconds())};"
                " not restarted (it rolls nothing out while paused)",
                paused=True,
            )
        return Decision(
            Verdict.PAUSED,
            held,
            f"{health.describe()}; not restarted (it rolls nothing out while paused)",
            paused=True,
        )
    if health.rolling_out and not health.crashlooping:
        # Counted from the rollout's end, should the pods still not be ready then.
        return Decision(
            Verdict.WATCH,
            replace(memory, unhealthy_since=None, failing_since=None),
            f"{health.describe()}: waiting",
        )
    # The clock runs from the first unhealthy sighting of any kind, kept across kinds.
    since = memory.unhealthy_since or now
    if health.short_of_nodes_only:
        # A restart before or after would not place a pod.
        waited = now - since
        waiting = Memory(unhealthy_since=since, waiting_since=memory.waiting_since or now)
        if waited > window:
            return Decision(
                Verdict.GIVE_UP,
                replace(waiting, gave_up_at=now),
                f"{health.describe()}, unhealthy for {humanize_seconds(waited.total_seconds())};"
                " not restarted (a restart cannot make room)",
                no_node=True,
            )
        return Decision(
            Verdict.NO_NODE,
            waiting,
            f"{health.describe()}; not restarted (a restart cannot make room)",
            no_node=True,
        )
    if health.crashlooping and health.waiting_for_node:
        # A crash loop beside pods waiting for a node: a rollout restart would replace the
        # ready pods too, each new one needing a node, and put the waiting ones behind more
        # pods to place, under load. Only the crash-looping pods are replaced (deleted, for
        # their ReplicaSet to recreate in the room they held): a restart's only help for
        # a crash loop, counted as one. The wait for a node goes on, on the same clock.
        if restarts_in_window < max_restarts:
            # The wait for a node is said again once the crash loop is gone, as after a
            # restart: "a human is paged if it lasts" (else the timeline ended on the
            # replacement, as if nothing more would come of the wait).
            return Decision(
                Verdict.REPLACE_PODS,
                Memory(unhealthy_since=since),
                f"{health.describe()}; replacing only the crash-looping"
                f" pod{'' if len(health.crashlooping) == 1 else 's'}"
                f" {', '.join(health.crashlooping)}, not restarting the deployment (that would"
                " replace the ready pods too and add pods to place);"
                f" replacement {restarts_in_window + 1} of {max_restarts}",
            )
        return Decision(
            Verdict.GIVE_UP,
            replace(memory, unhealthy_since=since, gave_up_at=now),
            f"{health.describe()} after {restarts_in_window} replacements of its crash-looping"
            " pods",
            replaced=True,
        )
    # Failing now: seen failing at the check before too? (A pod that just got its node and
    # is starting gets one check, as any pod being rescheduled.)
    if not health.crashlooping and memory.failing_since is None:
        return Decision(
            Verdict.WATCH,
            replace(memory, unhealthy_since=since, failing_since=now),
            f"{health.describe()}: first sighting",
        )
    if restarts_in_window < max_restarts:
        # The new pods get one check before the deployment counts as unhealthy again.
        return Decision(
            Verdict.RESTART,
            Memory(),
            f"{health.describe()}; restart {restarts_in_window + 1} of {max_restarts}",
        )
    return Decision(
        Verdict.GIVE_UP,
        replace(memory, unhealthy_since=since, gave_up_at=now),
        f"{health.describe()} after {restarts_in_window} restarts",
    )
