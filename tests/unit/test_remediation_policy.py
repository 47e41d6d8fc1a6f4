"""The approval policy: who may request and approve, per action or risk level; an empty
approvers list means nobody; typed parameters."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.errors import ConfigError, UsageError
from bot.models import Actor
from bot.permissions import Permissions, StaticDirectory
from bot.policy import default_policy_text, parse_policy
from bot.policy.actions import MAX_PODS
from bot.remediation import actions, approval


def _policy(**roles: object):  # type: ignore[no-untyped-def]
    data = yaml.safe_load(default_policy_text())
    data["roles"] = roles
    return parse_policy(yaml.safe_dump(data))


async def test_an_empty_approvers_list_means_nobody() -> None:
    policy = _policy(approvers=[])
    permissions = Permissions(policy, StaticDirectory())
    spec = actions.spec_for("kubernetes.scale")
    assert not await approval.may_approve(permissions, Actor("U0BOB"), spec)
    assert await approval.may_request(permissions, Actor("U0BOB"), spec)  # empty: everyone
    assert policy.roles.nobody_approves() == ["roles.approvers"]


async def test_per_action_then_per_risk_then_roles() -> None:
    policy = _policy(
        approvers=["U0LEAD"],
        high_risk_approvals=3,
        remediation={
            "high": {"approvers": ["S0SRE"], "requesters": ["U0ALICE"]},
            "kubernetes.restart": {"approvers": []},
        },
    )
    permissions = Permissions(policy, StaticDirectory({"S0SRE": ["U0BOB"]}))
    rollback, scale = actions.spec_for("kubernetes.rollback"), actions.spec_for("kubernetes.scale")
    assert await approval.may_approve(permissions, Actor("U0BOB"), rollback)  # via the group
    assert not await approval.may_approve(permissions, Actor("U0LEAD"), rollback)
    assert await approval.may_approve(permissions, Actor("U0LEAD"), scale)
    assert not await approval.may_request(permissions, Actor("U0EVE"), rollback)
    assert approval.approvals_needed(policy.roles, rollback) == 3
    assert approval.approvals_needed(policy.roles, scale) == 1
    restart = actions.spec_for("kubernetes.restart")
    assert not await approval.may_approve(permissions, Actor("U0LEAD"), restart)
    assert policy.roles.nobody_approves() == ["roles.remediation.kubernetes.restart.approvers"]


def test_unknown_remediation_keys_are_named() -> None:
    with pytest.raises(ConfigError, match=r"'kubernetes\.explode' is neither an action"):
        _policy(remediation={"kubernetes.explode": {"approvers": ["U0LEAD"]}})


def test_typed_parameters() -> None:
    spec = actions.spec_for("postgres.terminate_idle_in_transaction")
    assert actions.parse_words(spec, ["older_than=30m"]).older_than_s == 1800  # type: ignore[attr-defined]
    assert actions.parse_words(spec, ["90"]).older_than_s == 90  # type: ignore[attr-defined]
    # Rounded up, never down: 1.5 s read as 1 s ended sessions idle for only 1.2 s.
    assert actions.parse_words(spec, ["older_than=1.5"]).older_than_s == 2  # type: ignore[attr-defined]
    with pytest.raises(UsageError, match="older_than: an age is clock time"):
        actions.parse_words(spec, ["older_than=1bd"])  # was "older_than_s: ... >= 1"
    with pytest.raises(UsageError, match=r"terminate_idle_in_transaction: older_than: required\."):
        actions.parse_words(spec, ["pids=4121"])
    with pytest.raises(UsageError, match="takes no 'pid'"):
        actions.parse_words(spec, ["pid=3"])
    # Named as typed: the answers said `older_than_s`, a key the user never typed.
    with pytest.raises(UsageError, match=r"takes no 'foo' \(parameters: older_than, pids\)\."):
        actions.parse_words(spec, ["foo=bar"])
    with pytest.raises(UsageError, match=r"^'older_than' is given more than once: give it once"):
        actions.parse_words(spec, ["older_than=1", "older_than=2"])
    # A sentence of its own too: "... 2h, 1d, 1w, 1bd) Usage: ..." ran on into the usage,
    # and offered business days, which an age refuses.
    with pytest.raises(
        UsageError,
        match=r"^older_than: invalid duration '-5' \(an age: seconds like 90, or 30m, 2h, 1d\)\.$",
    ):
        actions.parse_words(spec, ["older_than=-5"])
    backend = actions.spec_for("postgres.terminate_backend")
    params = actions.parse_words(backend, ["4121", "terminate=yes"])
    assert params.pid == 4121 and params.terminate is True  # type: ignore[attr-defined]
    # A sentence of its own: the usage line that follows read "...equal to 1 Usage: ...".
    with pytest.raises(UsageError, match=r"pid: Input should be greater than or equal to 1\.$"):
        actions.parse_words(backend, ["pid=0"])
    scale = actions.spec_for("kubernetes.scale")
    # From a /diagnose button: keys the action does not take are dropped.
    assert actions.from_button(scale, {"replicas": 6, "cluster": "x"}).replicas == 6  # type: ignore[attr-defined]
    with pytest.raises(UsageError, match="No action called 'kubectl'"):
        actions.spec_for("kubectl")


def test_the_readme_and_the_help_say_what_delete_pod_does() -> None:
    # The README's row and /remediate help said neither that each pod is deleted only while
    # it is the pod the dry run read (its UID), nor, in the help, how many one request takes.
    spec = actions.spec_for("kubernetes.delete_pod")
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    [row] = [line for line in readme.splitlines() if line.startswith(f"| `{spec.name}` |")]
    assert f"| {spec.risk.value} |" in row
    for said in (f"at most {MAX_PODS}", "UID", "left alone", "too long for the request"):
        assert said in row, said
    assert f"at most {MAX_PODS}" in spec.does and "the pod the dry run read" in spec.does
