"""Every policy under examples/ (the README points users at them) passes check-config."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.policy import load_policy

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yml"))


def test_there_are_examples() -> None:
    assert [p.name for p in EXAMPLES] == ["shop.yml"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_policy_loads(path: Path) -> None:
    policy = load_policy(path)
    assert policy.services, "an example exists to show a service catalog"
