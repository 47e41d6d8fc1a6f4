"""What a second asker of a diagnosis under way is told: where the running one will go."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.diagnostics.runs import RunningDiagnosis
from bot.models import SYSTEM
from bot.slack.diagnosis_blocks import already_running

AT = datetime(2026, 12, 5, 16, 50, tzinfo=UTC)


def test_a_run_in_a_channel_names_the_channel_the_checks_and_the_time() -> None:
    text = already_running(RunningDiagnosis("web", ("http",), "U0ALICE", AT, "C0OPS"))
    assert text.startswith("A diagnosis of `web` (`http`) is already running")
    assert "started by <@U0ALICE>" in text and "2026-12-05 16:50 UTC" in text
    assert "posted in <#C0OPS>" in text


def test_a_run_asked_in_a_direct_message_is_never_shown_as_a_channel_link() -> None:
    text = already_running(RunningDiagnosis("web", (), "U0ALICE", AT, "D0ALICEDM"))
    assert "<#" not in text and "direct message <@U0ALICE> asked from" in text
    home = already_running(RunningDiagnosis("web", (), "U0ALICE", AT, None))
    assert "<#" not in home and "to <@U0ALICE> alone" in home


def test_the_bots_own_run_is_named_as_the_bots() -> None:
    text = already_running(RunningDiagnosis("web", (), SYSTEM.user_id, AT, "C0ROOM"))
    assert "started by the bot," in text and "<@" not in text


def test_a_run_on_the_command_line_is_named_as_one_not_as_a_slack_user() -> None:
    # `<@cli:alice>` renders as an unknown user, and its result is never posted in Slack.
    text = already_running(RunningDiagnosis("web", (), "cli:alice", AT, None))
    assert "started by `alice` with `chatops-bot diagnose`," in text and "<@" not in text
    assert "printed on that terminal, not posted in Slack" in text
    assert "App Home" not in text
