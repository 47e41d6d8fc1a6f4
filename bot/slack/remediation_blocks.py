"""Slack wording and Block Kit for remediations: the approval request, its final states, the
outcome in its thread, the private answers. Whatever came from a target (statements, names)
is redacted and escaped here before it becomes mrkdwn."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot import refs
from bot.redact import redact_text
from bot.remediation.actions import ACTIONS
from bot.remediation.storage import NOT_POSTED, Request, Status
from bot.slack.escape import clip_mrkdwn, escape_mrkdwn
from bot.slack.rich import mention

Block = dict[str, Any]

APPROVE_ACTION = "remediation_approve"
DENY_ACTION = "remediation_deny"
SECTION_MAX = 3000
APPROVERS_MAX = 2000  # of a section's 3,000: the rest of the line and room to spare

STATE_LABEL = {
    Status.REQUESTED: ":hourglass_flowing_sand: Waiting for approval",
    Status.APPROVED: ":white_check_mark: Approved",
    Status.RUNNING: ":gear: Running",
    Status.SUCCEEDED: ":white_check_mark: Succeeded",
    Status.FAILED: ":x: Failed",
    Status.EXPIRED: ":hourglass: Expired",
    Status.DENIED: ":no_entry: Denied",
    Status.UNKNOWN: ":warning: Outcome unknown",
}
RISK_LABEL = {"low": "LOW risk", "medium": "MEDIUM risk", "high": ":warning: HIGH risk"}


def _clean(text: str, limit: int = SECTION_MAX - 200) -> str:
    return clip_mrkdwn(escape_mrkdwn(redact_text(text)), limit)  # never `&am…`


def _when(at: datetime) -> str:
    fallback = at.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def _people(users: Sequence[str]) -> str:
    return ", ".join(f"<@{u}>" for u in users) or "nobody yet"


def usage(problem: str = "") -> str:
    lines = [problem] if problem else []
    lines.append(
        # Escaped: an unescaped `<action>` is a Slack link to "action" (see bot.slack.escape).
        escape_mrkdwn(
            "Usage: `/remediate <action> <service> [key=value ...]`, for example"
            " `/remediate kubernetes.scale checkout replicas=6` or"
            " `/remediate postgres.terminate_idle_in_transaction orders older_than=30m`."
        )
    )
    lines.append("Actions:")
    lines += [
        f"• `{spec.name}` ({spec.risk.value} risk): {escape_mrkdwn(spec.does)}"
        for spec in ACTIONS.values()
    ]
    return "\n".join(lines)


def no_service(action: str) -> str:
    """`/remediate <action>` alone: what is missing, before the usage."""
    # Escaped whole: `<service>` unescaped is a Slack link (see bot.slack.escape).
    return escape_mrkdwn(
        f"Which service? Name it after the action: `/remediate {action[:100]} <service> ...`."
    )


def _approvals_needed(count: int) -> str:
    if count == 1:
        return "It needs the approval of one person other than you."
    return f"It needs the approval of {count} people other than you."


def requested(request: Request) -> str:
    return (
        f"Request #{request.id} is posted for approval: {_clean(request.preview.summary)}."
        f" {_approvals_needed(request.approvals_needed)}"
    )


def request_text(request: Request) -> str:
    label = STATE_LABEL[request.status].split(": ", 1)[-1].split(" ", 1)[-1]
    # The notification text is mrkdwn too: an application_name `<!channel>` must not ping.
    return f"Remediation #{request.id} ({label}): {_clean(request.preview.summary, 2900)}"


def approvers_line(request: Request, approvers: Sequence[str]) -> str:
    """Whom to ask: the people and groups the policy lets approve, as mentions, without the
    requester (who may not approve their own request); cut whole, "and N more"."""
    listed = [refs.person_or_group(a) for a in approvers if a != request.requested_by]
    if not approvers:  # the policy changed since it was requested
        return "*Who may approve:* nobody: the policy lists no approvers for it."
    if not listed:
        return "*Who may approve:* nobody but the requester: fix the policy's approvers."
    shown: list[str] = []
    for ref in listed:
        if sum(len(m) + 2 for m in shown) + len(mention(ref)) > APPROVERS_MAX:
            break
        shown.append(mention(ref))
    more = len(listed) - len(shown)
    names = ", ".join(shown) + (f" and {more} more" if more else "")
    # Said when the requester is listed, or may be in a group listed.
    if request.requested_by in approvers or any(isinstance(r, refs.Group) for r in listed):
        names += f" (not <@{request.requested_by}>, who asked)"
    return f"*Who may approve:* {names}"


def request_blocks(request: Request, approvers: Sequence[str] = ()) -> list[Block]:
    """The request message: the change computed at request time, who asked, the risk, the
    expiry, approvals so far and, while it waits, who may approve (`approvers`, as the policy
    lists them) and Approve / Deny (with confirmations)."""
    meta = [
        f"`{request.action}` on `{request.service}`",
        RISK_LABEL.get(request.risk, request.risk),
        f"requested by <@{request.requested_by}>",
    ]
    if request.incident_id:
        meta.append(f"incident {request.incident_id}")
    if request.status is Status.REQUESTED:
        meta.append(f"expires {_when(request.expires_at)}")
    blocks: list[Block] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": f"Remediation #{request.id}: {STATE_LABEL[request.status]}"[:150],
                "emoji": True,
            },
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "*Change:* " + _clean(request.preview.summary)},
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(meta)}]},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"*Approvals:* {len(request.approvals)} of {request.approvals_needed}"
                f" ({_people(request.approvals)})",
            },
        },
    ]
    if request.status is Status.REQUESTED:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": approvers_line(request, approvers)},
            }
        )
        blocks.append(
            {
                "type": "actions",
                "block_id": f"remediation_{request.id}",
                "elements": approval_buttons(request.id, request.preview.summary),
            }
        )
    else:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _state_line(request)}})
    return blocks


def approval_buttons(
    request_id: int,
    summary: str,
    *,
    approve_action: str = APPROVE_ACTION,
    deny_action: str = DENY_ACTION,
) -> list[Block]:
    """Approve / Deny for one request, each behind Slack's confirm dialog."""
    value = str(request_id)
    return [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": "Approve"},
            "action_id": approve_action,
            "value": value,
            "style": "primary",
            "confirm": _confirm(
                "Approve this change?", f"This approves: {_clean(summary, 250)}", "Approve"
            ),
        },
        {
            "type": "button",
            "text": {"type": "plain_text", "text": "Deny"},
            "action_id": deny_action,
            "value": value,
            "style": "danger",
            "confirm": _confirm(
                "Deny this change?", "Nothing will be changed.", "Deny", danger=True
            ),
        },
    ]


def _confirm(title: str, text: str, confirm: str, *, danger: bool = False) -> Block:
    dialog: Block = {
        "title": {"type": "plain_text", "text": title[:100]},
        "text": {"type": "mrkdwn", "text": text[:300]},
        "confirm": {"type": "plain_text", "text": confirm},
        "deny": {"type": "plain_text", "text": "Cancel"},
    }
    if danger:
        dialog["style"] = "danger"
    return dialog


def _state_line(request: Request) -> str:
    status = request.status
    if status is Status.DENIED and request.decided_by == request.requested_by:
        return f"*Withdrawn* by <@{request.decided_by}>, who asked for it; nothing was changed."
    if status is Status.DENIED:
        return f"*Denied* by <@{request.decided_by}>; nothing was changed."
    if status is Status.EXPIRED and request.outcome not in ("", "expired"):
        # Closed for a reason of its own (its incident was resolved).
        why = _clean(request.outcome, 300)
        return f"*Expired*: {why} before enough approvals; nothing was changed."
    if status is Status.EXPIRED:
        return "*Expired* before enough approvals; nothing was changed."
    if status is Status.RUNNING:
        return f"*Running* since {_when(request.started_at or request.requested_at)}."
    if status is Status.UNKNOWN and request.result:
        return (
            f"*Outcome unknown*: {_clean(request.outcome, 1500)}. It may or may not have been"
            " made: check the target before requesting it again (details in the thread)."
        )
    if status is Status.UNKNOWN:
        return (
            "*Outcome unknown*: the bot stopped while this ran. It was not run again; check"
            " the target before requesting it again."
        )
    return f"*{status.value.capitalize()}*: {_clean(request.outcome, 1500)} (details in the thread)"


def outcome_text(request: Request) -> str:
    result = request.result or {}
    lines = [f"Remediation #{request.id} {STATE_LABEL[request.status]}"]
    if request.status is Status.UNKNOWN and not result:
        lines.append(
            "The bot stopped while it ran; it was not run again. Check the target before"
            " requesting it again."
        )
    else:
        done = "Tried" if request.status is Status.UNKNOWN else "Done"
        lines.append(f"*{done}:* {_clean(str(result.get('changed', request.outcome)), 1200)}")
        if result.get("drift"):
            lines.append(f"*Changed since the preview, left alone:* {_clean(result['drift'], 600)}")
        if result.get("after"):
            lines.append(f"*Now:* {_clean(str(result['after']), 1000)}")
    return "\n".join(lines)


def tell_text(request: Request, why: str = "") -> str:
    if request.status is Status.EXPIRED and not request.outcome.startswith(NOT_POSTED):
        # Expired while its message waited for a retry, which then failed for good.
        because = f" ({_clean(why, 200)})" if why else ""
        return (
            f"Remediation #{request.id} ({request.action} on {request.service}) expired with"
            f" {len(request.approvals)} of {request.approvals_needed} approvals; its request"
            f" message could not be posted{because}, so nobody else could approve it. Nothing"
            " was changed. Invite the bot to the channel it was asked in, or ask again where"
            f" it is. It was: {_clean(request.preview.summary, 2500)}"
        )
    if request.status is Status.EXPIRED:  # its message could not be posted
        why = _clean(request.outcome.removeprefix(NOT_POSTED), 200)
        return (
            f"Remediation #{request.id} ({request.action} on {request.service}) could not be"
            f" posted in <#{request.channel_id}> ({why}), so nobody could approve it: it is"
            " closed and nothing was changed. Invite the bot to that channel, or ask again"
            f" where it is. It was: {_clean(request.preview.summary, 2500)}"
        )
    if request.status is Status.UNKNOWN:
        return (
            f"Remediation #{request.id} ({request.action} on {request.service}): outcome"
            " unknown. The bot stopped while it ran and did not run it again; check the target"
            f" before requesting it again. It was: {_clean(request.preview.summary, 2700)}"
        )
    # Run, with no request message to reply under: the outcome its thread would have had.
    return (
        f"{outcome_text(request)}\n({request.action} on {request.service}; its request message"
        " could not be posted, so its outcome comes to you here.)"
    )


def refused(reason: str) -> str:
    return f"Not done: {escape_mrkdwn(reason)}"


def approved(request: Request, started: bool) -> str:
    if started:
        return f"Approved. Running #{request.id} now; the outcome will be in its thread."
    left = request.approvals_needed - len(request.approvals)
    return f"Approved. #{request.id} needs {left} more approval(s) from someone else."


def denied(request: Request) -> str:
    verb = "Withdrew" if request.decided_by == request.requested_by else "Denied"
    return f"{verb} #{request.id}; nothing was changed."
