"""Slack's signing secret was never registered for masking (paging's secrets and the alerts
token are): it has no shape a pattern could know, so an error or a log line that carried it
printed it whole."""

from __future__ import annotations

from pathlib import Path

from bot.redact import redact_text
from bot.runtime import create_bot
from bot.settings import Settings


def test_the_bot_masks_slack_secrets_it_was_given(tmp_path: Path) -> None:
    secret = "f3e2d1c0b9a8978685746352413021ff"
    app_token = "xapp-1-A0-1-ab12"
    assert secret in redact_text(f"signed with {secret}")  # not masked before the bot is made
    create_bot(
        Settings(
            SLACK_BOT_TOKEN="xoxb-unit-masked",
            SLACK_SIGNING_SECRET=secret,
            SLACK_APP_TOKEN=app_token,
            DATABASE_URL=f"sqlite:///{tmp_path}/bot.db",
        )
    )
    text = redact_text(f"signed with {secret}; app token {app_token}; bot xoxb-unit-masked")
    assert secret not in text and app_token not in text and "xoxb-unit-masked" not in text
    assert text.startswith("signed with ***")
