"""Every policy under examples/ (the README points users at them) passes check-config."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.policy import load_policy

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yml"))


def test_there_are_examples() -> None:
    assert [p.name for p in EXAMPLES] == ["shop.yml"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_policy_loads(path: Path) -> None:
    policy = load_policy(path)
    assert policy.services, "an example exists to show a service catalog"


def test_the_readme_console_approver_may_approve_in_the_policies_it_names() -> None:
    """Followed literally, the README's console walkthrough of a remediation must work: the
    person it says to become approves in the built-in policy and in examples/shop.yml (it
    once named U0BOB, whom neither lets approve)."""
    readme = (ROOT / "README.md").read_text()
    [user] = re.findall(r"then `:as (U0[A-Z0-9]+)` \(an approver", readme)
    for policy in (load_policy(None), load_policy(ROOT / "examples" / "shop.yml")):
        assert user in policy.roles.approvers
