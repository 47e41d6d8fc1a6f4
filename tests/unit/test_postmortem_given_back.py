"""A postmortem that could not be saved comes back to its author: all of it, in messages
Slack takes."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.console.workspace.checks import MESSAGE_TEXT_MAX
from bot.reports.forms import TEXT_FIELDS, PostmortemInput
from bot.reports.models import NewActionItem
from bot.slack import report_blocks


def test_a_full_form_of_markup_comes_back_in_messages_slack_takes() -> None:
    # Every field full of "<" (escaped "&lt;", four times as long): 70,000 characters in
    # one direct message, which Slack refuses (msg_too_long), and the text was lost after all.
    form = PostmortemInput(
        **{
            name: "<" * (1000 if name in ("affected_users", "data_impact") else 3000)
            for name in TEXT_FIELDS
        },
        action_items=[
            NewActionItem("Alert on <pool>", "U0BOB", datetime(2026, 12, 20, tzinfo=UTC))
        ],
    )
    messages = report_blocks.postmortem_given_back("INC-20261205-001", ":warning: Down.", form)
    assert len(messages) > 1
    assert all(len(message) <= MESSAGE_TEXT_MAX for message in messages)
    joined = "\n".join(messages)
    assert joined.startswith("Your postmortem of INC-20261205-001: :warning: Down.")
    assert joined.count("&lt;") == 4 * 3000 + 2 * 1000 + 1
    for label in ("Root cause", "Resolution", "Prevention", "Lessons learned", "Data impact"):
        assert f"*{label}*\n&lt;" in joined
    assert "*Action item* Alert on &lt;pool&gt;, owner <@U0BOB>" in joined
