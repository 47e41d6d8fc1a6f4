"""The action catalog: every remediation the bot can run, its typed parameters, its risk and
the system of the service catalog it may touch.

Parameters are pydantic models, validated whether they were typed (`/remediate
kubernetes.scale checkout replicas=6`) or came back from a suggestion button (where keys the
action does not take, like an ECS cluster the catalog names anyway, are dropped). The catalog
entry, not the parameters, says which deployment, database or ECS service is reached.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.durations import Duration
from bot.errors import UsageError
from bot.policy.actions import ACTION_NAMES, MAX_PODS, RISK_LEVELS
from bot.text import decimal


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


assert {r.value for r in Risk} == set(RISK_LEVELS)

_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(Params):
    pass


class DeploymentParams(Params):
    deployment: str | None = None  # the service's only deployment when left out

    @field_validator("deployment")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not _K8S_NAME.match(value):
            raise ValueError(f"'{value[:63]}' is not a Kubernetes deployment name")
        return value


class ScaleParams(DeploymentParams):
    replicas: int = Field(ge=0, le=1000)


class PodParams(Params):
    # One or more pods, each once: `pod=a` (buttons and requests made before pods were
    # named together) is `pods=a`, the same change.
    pods: tuple[str, ...] = Field(min_length=1, max_length=MAX_PODS)

    @model_validator(mode="before")
    @classmethod
    def _one_pod(cls, data: Any) -> Any:
        if isinstance(data, dict) and "pod" in data and "pods" not in data:
            data = {**data, "pods": data["pod"]}
            del data["pod"]
        return data

    @field_validator("pods", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            return value  # pydantic says what is wrong with it
        if "" in value:
            raise ValueError("an empty pod name (a comma too many?)")
        # One order, each once, before they are counted: a second request for the same pods
        # is the same change, and `a,a` is one pod to delete, not two.
        names = sorted(set(value))
        if not names:
            raise ValueError("name one pod at least")
        if len(names) > MAX_PODS:
            raise ValueError(
                f"at most {MAX_PODS} pods a request ({len(names)} given): ask for the others"
                " in another"
            )
        return names

    @field_validator("pods")
    @classmethod
    def _names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not _K8S_NAME.match(name):
                raise ValueError(f"'{name[:63]}' is not a pod name")
        return value


class AgeParams(Params):
    older_than_s: int = Field(ge=1, le=30 * 86400)
    # Only these backends (the ones a diagnosis named), and only while they still match.
    pids: tuple[int, ...] | None = Field(default=None, min_length=1, max_length=100)

    @field_validator("pids")
    @classmethod
    def _pids(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if value is not None and any(not 1 <= pid < 2**31 for pid in value):
            raise ValueError("a pid is a positive 32-bit number")
        # One order, each once: `pids=4188,4121` is the change `pids=4121,4188` asks for, so
        # a second request for it is refused as the same (requests.same_waiting).
        return tuple(sorted(set(value))) if value is not None else None


class BackendParams(Params):
    pid: int = Field(ge=1, le=2**31 - 1)
    terminate: bool = False  # cancel the query first; end the session only when asked


class RedisPolicyParams(Params):
    policy: Literal[
        "noeviction",
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ]


class DesiredParams(Params):
    desired: int = Field(ge=0, le=10_000)


System = Literal["kubernetes", "postgres", "redis", "aws"]


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One action: `main` is the parameter a bare value stands for (`... checkout 6`)."""

    name: str
    system: System
    risk: Risk
    params: type[Params]
    does: str
    main: str | None = None


ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        ActionSpec(
            "kubernetes.restart",
            "kubernetes",
            Risk.MEDIUM,
            DeploymentParams,
            "rollout restart of a deployment (pods replaced one by one)",
            "deployment",
        ),
        ActionSpec(
            "kubernetes.scale",
            "kubernetes",
            Risk.MEDIUM,
            ScaleParams,
            "scale a deployment to N replicas, within the catalog's min/max",
            "replicas",
        ),
        ActionSpec(
            "kubernetes.rollback",
            "kubernetes",
            Risk.HIGH,
            DeploymentParams,
            "roll a deployment back to its previous revision (rollout undo)",
            "deployment",
        ),
        ActionSpec(
            "kubernetes.delete_pod",
            "kubernetes",
            Risk.LOW,
            PodParams,
            "delete pods a catalogued deployment owns (pods=a,b, at most 25) for its replica"
            " set to replace; each only if still the pod the dry run read",
            "pods",
        ),
        ActionSpec(
            "postgres.terminate_idle_in_transaction",
            "postgres",
            Risk.MEDIUM,
            AgeParams,
            "terminate sessions idle in transaction longer than N",
            "older_than_s",
        ),
        ActionSpec(
            "postgres.terminate_idle",
            "postgres",
            Risk.MEDIUM,
            AgeParams,
            "terminate connections idle longer than N",
            "older_than_s",
        ),
        ActionSpec(
            "postgres.terminate_long_queries",
            "postgres",
            Risk.HIGH,
            AgeParams,
            "terminate active queries running longer than N",
            "older_than_s",
        ),
        ActionSpec(
            "postgres.terminate_backend",
            "postgres",
            Risk.MEDIUM,
            BackendParams,
            "cancel a backend's query by pid, then (terminate=yes) end its session",
            "pid",
        ),
        ActionSpec(
            "redis.set_maxmemory_policy",
            "redis",
            Risk.MEDIUM,
            RedisPolicyParams,
            "CONFIG SET maxmemory-policy",
            "policy",
        ),
        ActionSpec(
            "ecs.set_desired_count",
            "aws",
            Risk.MEDIUM,
            DesiredParams,
            "set the ECS service's desired count",
            "desired",
        ),
        ActionSpec(
            "ecs.force_new_deployment",
            "aws",
            Risk.MEDIUM,
            NoParams,
            "force a new deployment of the ECS service",
        ),
        ActionSpec(
            "autoscaling.set_desired_capacity",
            "aws",
            Risk.MEDIUM,
            DesiredParams,
            "set the Auto Scaling group's desired capacity, within its min/max",
            "desired",
        ),
    )
}
assert set(ACTIONS) == set(ACTION_NAMES), "bot/remediation/names.py lists every action"

_ALIASES = {
    "older_than": "older_than_s",
    "replicas": "replicas",
    "count": "desired",
    "pod": "pods",
}
# A field as the user types it, in answers: `older_than`, never the model's `older_than_s`.
_TYPED = {"older_than_s": "older_than"}
# Typed as ASCII digits only: pydantic would also read `1_0` as 10 and `+6` as 6, a guess
# that acts.
_WHOLE = {"replicas", "desired", "pid"}
_TRUE = {"yes", "true", "1", "on"}
_FALSE = {"no", "false", "0", "off"}


def spec_for(action: str) -> ActionSpec:
    spec = ACTIONS.get(action.lower())
    if spec is None:
        raise UsageError(f"No action called '{_echo(action)}'. Actions: {', '.join(ACTIONS)}.")
    return spec


def _echo(text: str) -> str:
    return re.sub(r"[^\w.=-]", "", text)[:60] or "?"


def _value(field: str, raw: str) -> Any:
    if field == "older_than_s":
        seconds = decimal(raw)
        try:
            age = Duration.parse(raw if seconds is None else seconds)
        except ValueError as exc:
            # Not Duration's hint, which offers business days (1bd): refused just below.
            problem = str(exc).split(" (use ", 1)[0].rstrip(".")
            raise UsageError(
                f"older_than: {problem} (an age: seconds like 90, or 30m, 2h, 1d)."
            ) from None
        if age.business_days:
            raise UsageError("older_than: an age is clock time, like 90 (seconds), 30m or 2h.")
        # Up, never down: older_than=1.5 must not end a session idle for 1.2 s.
        return math.ceil(age.seconds)
    if field == "pids":
        pids = [part.strip() for part in raw.split(",")]
        numbers = [decimal(part) for part in pids]
        if None in numbers:
            raise UsageError(
                "pids: give them as numbers in digits 0-9 separated by commas (pids=4242,4243)."
            )
        return numbers
    if field in _WHOLE:
        if not (raw.isascii() and raw.isdigit()):
            shown = re.sub(r"[^\w.+-]", "", raw)[:20] or "?"
            raise UsageError(
                f"{field}: '{shown}' is not a whole number in digits 0-9: give it like {field}=6."
            )
        return int(raw)
    if field == "terminate":
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
    return raw


def parse_words(spec: ActionSpec, words: Sequence[str]) -> Params:
    """Typed parameters from `key=value` words (one bare value stands for `spec.main`)."""
    data: dict[str, Any] = {}
    before = ""
    for word in words:
        key, sep, raw = word.partition("=")
        if not sep:
            if before.endswith(","):  # `pods=a, b`: a space ends a word, not a list
                raise UsageError(f"Unexpected '{_echo(word)}': a list takes no spaces (a,b).")
            if spec.main is None or spec.main in data:
                raise UsageError(f"Unexpected '{_echo(word)}': give parameters as key=value.")
            key, raw = spec.main, word
        before = raw
        field = _ALIASES.get(key.lower(), key.lower())
        if field not in spec.params.model_fields:
            known = ", ".join(_TYPED.get(f, f) for f in spec.params.model_fields) or "none"
            raise UsageError(f"{spec.name} takes no '{_echo(key)}' (parameters: {known}).")
        if not raw:
            raise UsageError(f"'{_echo(key)}' needs a value.")
        if field in data:
            # `replicas=2 replicas=5`: which one was meant is a guess, and a guess acts.
            raise UsageError(f"'{_TYPED.get(field, field)}' is given more than once: give it once.")
        data[field] = _value(field, raw)
    return validate(spec, data)


def from_button(spec: ActionSpec, params: Mapping[str, Any]) -> Params:
    """Parameters from a suggestion button: keys the action does not take are dropped."""
    # A button of an older diagnosis may name a field by its older name (`pod`).
    named: dict[str, Any] = {}
    for key, value in params.items():
        field = _ALIASES.get(key, key)
        if field in named and field in spec.params.model_fields:
            # `pod` and `pods` both (a forged value): which was meant is a guess, as typed.
            raise UsageError(f"'{_TYPED.get(field, field)}' is given more than once: give it once.")
        named[field] = value
    return validate(spec, {k: v for k, v in named.items() if k in spec.params.model_fields})


def stored_forms(action: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """`params` as this version stores them first, then the other forms of the same change:
    a request an older bot made still waits as such (`pod=a`, before pods were named
    together, is `pods=a`), and asking for that change again must find it."""
    pods = params.get("pods")
    if action == "kubernetes.delete_pod" and isinstance(pods, list) and len(pods) == 1:
        # One pod is stored as older versions store it: a replica of the release before,
        # during a rolling upgrade, may run the request (it refuses `pods` as unexpected).
        return [{"pod": pods[0]}, params]
    return [params]


def validate(spec: ActionSpec, data: Mapping[str, Any]) -> Params:
    try:
        return spec.params.model_validate(dict(data))
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "parameters"
            where = _TYPED.get(where, where)  # as it is typed
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "missing":
                message = "required"
            problems.append(f"{where}: {message}")
        raise UsageError(f"{spec.name}: " + "; ".join(problems) + ".") from None
