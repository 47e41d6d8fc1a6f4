"""`/oncall` as the on-call reads it: the people the levels name who have left Slack."""

from __future__ import annotations

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
