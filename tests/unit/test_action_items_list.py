"""`/incident actions`: the list of an incident's action items within Slack's 50 blocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.models import Incident, Severity, Status
from bot.reports.models import ActionItem
from bot.slack import report_blocks

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


def test_open_items_past_the_cut_keep_their_close_button() -> None:
    # 45 items, the oldest 42 closed: the list showed the first 40 by number (all closed)
    # and the 3 open ones, which need closing, had no Close button anywhere.
    incident = Incident(
        id="INC-20261205-001",
        title="Checkout returns 502",
        severity=Severity.P1,
        status=Status.RESOLVED,
        declared_by="U0ALICE",
        declared_at=T0,
        updated_at=T0,
    )
    items = [
        ActionItem(
            id=number,
            incident_id=incident.id,
            text=f"Follow-up {number}",
            owner="U0BOB",
            due_at=T0 + timedelta(days=7),
            created_by="U0ALICE",
            created_at=T0,
            closed_at=T0 if number <= 42 else None,
            closed_by="U0BOB" if number <= 42 else None,
        )
        for number in range(1, 46)
    ]
    blocks = report_blocks.action_items_blocks(incident, items, T0 + timedelta(days=1))
    assert len(blocks) <= 50
    buttons = [
        block["accessory"]["value"]
        for block in blocks
        if block.get("accessory", {}).get("action_id") == report_blocks.CLOSE_ITEM_ACTION
    ]
    assert buttons == ["43", "44", "45"]
    assert "…and 5 more in the report." in str(blocks[-1])
