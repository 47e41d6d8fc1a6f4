"""`/oncall` as the on-call reads it: the people the levels name who have left Slack."""

from __future__ import annotations

from tests.e2e.conftest import HarnessFactory
from tests.e2e.incident_helpers import policy_with
from tests.harness import BotHarness


async def test_oncall_says_who_named_in_the_ladder_has_left_slack(harness: BotHarness) -> None:
    """The built-in policy's level 1 is U0ONCALL. Deactivated, every page to them reaches
    nobody, and `/oncall` listed them as if on call: only each page's timeline line said so."""
    harness.double.add_user("U0ONCALL", name="oncall", deleted=True)
    status, body = await harness.command("P1", command="/oncall")
    assert status == 200 and body["response_type"] == "ephemeral"
    text = body["text"]
    assert (
        "• Level 1, at once: <@U0ONCALL> (<@U0ONCALL> is deactivated in Slack: no page reaches"
        " them)"
    ) in text, text
    assert "• Level 2, after 30 min: <@U0ENGLEAD>\n" in text + "\n", text
    asked = [c.params.get("user") for c in harness.double.calls if c.method == "users.info"]
    assert sorted(asked) == ["U0ENGLEAD", "U0ONCALL"]


async def test_oncall_says_which_user_groups_of_the_ladder_hold_nobody(
    make_harness: HarnessFactory,
) -> None:
    """A level's user group with nobody in it, or one Slack no longer knows, pages nobody
    ("Level 1 page reached nobody: no one could be found in @sre"); `/oncall` listed it as
    standing at its level, unmarked, as it marks the people who left Slack."""
    policy = policy_with(
        escalation={
            "P1": [
                {"after": 0, "notify": ["S0EMPTY", "S0GONE"]},
                {"after": "30m", "notify": ["S0SRE", "U0ENGLEAD"]},
            ]
        }
    )
    harness = await make_harness("sqlite", policy=policy)
    harness.double.add_usergroup("S0EMPTY", [])
    harness.double.add_usergroup("S0SRE", ["U0ALICE"])
    status, body = await harness.command("P1", command="/oncall")
    assert status == 200 and body["response_type"] == "ephemeral"
    text = body["text"]
    assert (
        "• Level 1, at once: <!subteam^S0EMPTY> <!subteam^S0GONE> (<!subteam^S0EMPTY> is a user"
        " group with nobody in it; <!subteam^S0GONE> is a user group Slack does not know:"
        " no page reaches them)"
    ) in text, text
    assert "• Level 2, after 30 min: <!subteam^S0SRE> <@U0ENGLEAD>\n" in text + "\n", text
