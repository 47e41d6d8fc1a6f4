"""The App Home view: the viewer's incidents and roles, every open incident (summarised past
a few), the action items they own and, once remediation exists, approvals waiting for them.
Stays within Slack's 100 blocks however many incidents are open."""

from __future__ import annotations

from typing import Any

from bot.home.models import HomeFacts
from bot.models import Incident
from bot.redact import redact_text
from bot.remediation.read_models import ApprovalWaiting
from bot.slack.blocks import button, context, divider, header, section
from bot.slack.escape import clip, clip_mrkdwn, escape_mrkdwn
from bot.slack.remediation_blocks import approval_buttons
from bot.slack.report_blocks import item_block
from bot.slack.templates import severity_label, slack_date, user

Block = dict[str, Any]
HOME_ACK_ACTION = "home_ack"
HOME_APPROVE_ACTION = "home_remediation_approve"
HOME_DENY_ACTION = "home_remediation_deny"
APPROVALS_SHOWN = 10
MAX_BLOCKS = 100


def _declared(incident: Incident) -> str:
    """When it was declared, as Slack shows it to each reader when they look ("3 hours
    ago"): a Home stays as published until something changes, and an age written into it
    ("open 4 s") read the same hours later."""
    fallback = incident.declared_at.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(incident.declared_at.timestamp())}^{{ago}}|{fallback}>"


def incident_line(incident: Incident, facts: HomeFacts) -> str:
    due = slack_date(incident.next_update_due) if incident.next_update_due else "none scheduled"
    return (
        f"{severity_label(incident.severity)} *{incident.id}* "
        f"{escape_mrkdwn(clip(incident.title, 150))}\n"
        f"{incident.status.label} · declared {_declared(incident)} · commander "
        f"{user(incident.commander)} · next update {due}"
    )


def _incident_block(incident: Incident, facts: HomeFacts) -> Block:
    block = section(incident_line(incident, facts))
    if incident.acknowledged_at is None:
        block["accessory"] = button("Acknowledge", HOME_ACK_ACTION, incident.id, style="primary")
    return block


def approval_blocks(waiting: ApprovalWaiting) -> list[Block]:
    """One request waiting for the viewer: the change, who asked, and Approve / Deny."""
    where = f" · {waiting.incident_id}" if waiting.incident_id else ""
    line = (
        f"*#{waiting.request_id}* `{escape_mrkdwn(waiting.action)}` on"
        f" `{escape_mrkdwn(waiting.service)}` · {escape_mrkdwn(waiting.risk)} risk{where}\n"
        # Cut once escaped: each `<` of a statement takes four characters, and cut before,
        # a summary full of them pushed who asked and the expiry past the section's end.
        f"{clip_mrkdwn(escape_mrkdwn(redact_text(waiting.summary)), 2500)}\n"
        f"requested by {user(waiting.requested_by)} · approvals {waiting.approvals} of"
        f" {waiting.approvals_needed} · expires {slack_date(waiting.expires_at)}"
    )
    return [
        section(line),
        {
            "type": "actions",
            "block_id": f"home_remediation_{waiting.request_id}",
            "elements": approval_buttons(
                waiting.request_id,
                waiting.summary,
                approve_action=HOME_APPROVE_ACTION,
                deny_action=HOME_DENY_ACTION,
            ),
        },
    ]


def home_view(facts: HomeFacts) -> dict[str, Any]:
    """The `home` view for `facts.user_id`."""
    blocks: list[Block] = [header("Incidents")]
    blocks.append(section("*Your incidents*"))
    if facts.mine:
        for incident, roles in facts.mine:
            blocks.append(section(f"{incident_line(incident, facts)}\nYou: {', '.join(roles)}"))
        if facts.mine_total > len(facts.mine):
            more = facts.mine_total - len(facts.mine)
            blocks.append(
                context(f"…and {more} more naming you, less urgent. `/incident list` shows them.")
            )
    else:
        blocks.append(context("No open incident names you in a role."))
    blocks.append(divider())
    counts = " · ".join(
        f"{severity_label(s)} {n}" for s, n in sorted(facts.open_by_severity.items())
    )
    blocks.append(
        section(f"*Open incidents: {facts.open_total}*" + (f"\n{counts}" if counts else ""))
    )
    blocks += [_incident_block(incident, facts) for incident in facts.open_incidents]
    hidden = facts.open_total - len(facts.open_incidents)
    if hidden > 0:
        blocks.append(context(f"…and {hidden} more, less urgent. `/incident list` shows them all."))
    blocks.append(divider())
    blocks.append(section(f"*Your action items: {facts.action_items_total} open*"))
    blocks += [item_block(item, facts.generated_at, incident=True) for item in facts.action_items]
    if facts.action_items_total > len(facts.action_items):
        more = facts.action_items_total - len(facts.action_items)
        blocks.append(context(f"…and {more} more, due later."))
    if facts.approvals is not None:  # remediation wired: its requests waiting for this person
        blocks.append(divider())
        blocks.append(section(f"*Approvals waiting for you: {len(facts.approvals)}*"))
        for waiting in facts.approvals[:APPROVALS_SHOWN]:
            blocks += approval_blocks(waiting)
        if len(facts.approvals) > APPROVALS_SHOWN:
            more = len(facts.approvals) - APPROVALS_SHOWN
            blocks.append(context(f"…and {more} more, newer."))
    blocks.append(context(f"Updated {slack_date(facts.generated_at)}"))
    return {"type": "home", "blocks": blocks[:MAX_BLOCKS]}


def home_text(facts: HomeFacts) -> str:
    """The view as plain lines (the console's `:home`)."""
    return f"{facts.open_total} open incident(s); {facts.action_items_total} action item(s)"
