"""What a dry run computes and what an execution reports: plain data, JSON in the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.catalog import NO_SERVICES, Service
from bot.errors import ChatOpsError, NotFound
from bot.policy import Policy
from bot.remediation import actions
from bot.remediation.actions import ActionSpec, Params
from bot.text import without_forbidden


class NotApplicable(ChatOpsError):
    """The action cannot apply to this service or target as it is now (refused at dry run)."""


# The most of a preview's summary every front end shows whole (the App Home keeps 2,500
# characters of it, a request message 2,800): an approver approves what they can read.
SHOWN_WHOLE = 2400


@dataclass(frozen=True, slots=True)
class Preview:
    """The exact change, computed against the live target when the request is made.

    `summary` is one plain sentence ("scale deployment checkout in namespace shop from 3 to 6
    replicas"); `facts` hold what the executor re-checks before it runs (pids with their
    backend start, the replica count seen, the revision to return to...).
    """

    summary: str
    facts: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Names and query text come from the target: a role named with a right-to-left
        # override, or a query with terminal colour codes, must not reach the approver as is.
        object.__setattr__(self, "summary", without_forbidden(self.summary))

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.summary, "facts": self.facts}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Preview:
        return cls(str(data.get("summary", "")), dict(data.get("facts") or {}))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened: `ok` False when nothing (or not all) could be done; `changed` what was
    done, `drift` what no longer matched the preview and was left alone, `after` what the
    target looks like now; `known` False when nobody can tell whether the change was made
    (the system did not answer in time)."""

    ok: bool
    changed: str
    after: str
    drift: str = ""
    facts: dict[str, Any] = field(default_factory=dict)
    known: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "known": self.known,
            "changed": self.changed,
            "after": self.after,
            "drift": self.drift,
            "facts": self.facts,
        }


def unreached(exc: Exception) -> Outcome:
    """Nothing done: the target failed (or did not answer) before the change was sent, so
    this is known, unlike a change sent without an answer ("outcome unknown")."""
    return Outcome(False, "nothing changed", f"{exc} (before any change was sent)")


@dataclass(frozen=True, slots=True)
class Target:
    """The action, aimed at one catalogued service."""

    spec: ActionSpec
    service: str
    entry: Service


def target_for(policy: Policy, action: str, service: str) -> Target:
    """`action` aimed at the catalogued `service`; NotFound (listing the services) otherwise."""
    spec = actions.spec_for(action)
    entry = policy.services.get(service.lower())
    if entry is None:
        names = ", ".join(sorted(policy.services)) or NO_SERVICES
        raise NotFound(f"No service called '{actions._echo(service)}'. Services: {names}.")
    return Target(spec, service.lower(), entry)


def explicit(target: Target, params: Params) -> Params:
    """`params` with the deployment the executor would pick when it is left out (the entry's
    only one) written in: `kubernetes.restart checkout` and a button naming
    `deployment=checkout` ask for the same change, and are stored as such."""
    k8s = target.entry.kubernetes
    if (
        "deployment" in type(params).model_fields
        and getattr(params, "deployment", None) is None
        and k8s is not None
        and len(k8s.deployments) == 1
    ):
        return params.model_copy(update={"deployment": k8s.deployments[0]})
    return params


class Executor(Protocol):
    """One per system: a dry run, then the change, through the system's API client only."""

    async def preview(self, target: Target, params: Params) -> Preview:
        """Compute the exact change now; NotApplicable (or TargetError) when it cannot run."""
        ...

    async def execute(self, target: Target, params: Params, preview: Preview) -> Outcome:
        """Make the change, but only as far as the target still matches `preview`."""
        ...
