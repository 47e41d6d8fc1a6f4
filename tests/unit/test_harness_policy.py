"""The e2e harness parses the built-in policy once per process and hands each bot a copy."""

from __future__ import annotations

from bot.policy import Severity, load_policy
from tests.harness import default_policy


def test_each_harness_gets_the_built_in_policy_and_its_own_lists_and_dicts() -> None:
    first, second = default_policy(), default_policy()
    assert first == second == load_policy(None)
    severity = next(iter(first.escalation))
    first.escalation[severity][0].notify.append("U0CHANGED")
    first.war_room_severities.append(Severity.P3)
    first.severities.clear()
    assert default_policy() == second == load_policy(None)
