from __future__ import annotations

import pytest

from bot.errors import NotifierError
from bot.models import Actor
from bot.permissions import CachedDirectory, Permissions, StaticDirectory
from bot.policy import default_policy_text, load_policy, parse_policy


def _policy(roles: str):  # type: ignore[no-untyped-def]
    text = default_policy_text().split("roles:")[0] + roles + "\nservices: {}\n"
    return parse_policy(text)


async def test_empty_role_means_everyone() -> None:
    permissions = Permissions(load_policy(None), StaticDirectory())
    assert await permissions.allows(Actor("U0ANYONE"), "declarers")


async def test_users_and_groups() -> None:
    policy = _policy("roles:\n  responders: [U0LEAD, S0SRE]\n  approvers: [U0LEAD]\n")
    permissions = Permissions(policy, StaticDirectory({"S0SRE": ["U0SRE1", "U0SRE2"]}))
    assert await permissions.allows(Actor("U0LEAD"), "responders")
    assert await permissions.allows(Actor("U0SRE2"), "responders")
    assert not await permissions.allows(Actor("U0SRE2"), "approvers")
    assert not await permissions.allows(Actor("U0RANDOM"), "responders")
    assert await permissions.expand(["U0LEAD", "S0SRE", "U0SRE1"]) == ["U0LEAD", "U0SRE1", "U0SRE2"]


class FlakyDirectory:
    def __init__(self) -> None:
        self.calls = 0
        self.fail = False

    async def group_members(self, group_id: str) -> frozenset[str]:
        self.calls += 1
        if self.fail:
            raise NotifierError("Slack error: internal_error")
        return frozenset({"U0A"})


async def test_cache_serves_members_and_survives_a_slack_failure() -> None:
    flaky = FlakyDirectory()
    cached = CachedDirectory(flaky, ttl=0)
    assert await cached.group_members("S1") == {"U0A"}
    flaky.fail = True
    assert await cached.group_members("S1") == {"U0A"}  # stale beats nothing
    with pytest.raises(NotifierError):
        await cached.group_members("S2")
    warm = CachedDirectory(FlakyDirectory(), ttl=300)
    await warm.group_members("S1")
    await warm.group_members("S1")
    assert warm._directory.calls == 1  # type: ignore[attr-defined]
