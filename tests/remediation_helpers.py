"""Drive a remediation through the real bot and the Slack double: request, click, settle."""

from __future__ import annotations

from typing import Any

from bot.slack import remediation_blocks as views
from tests.e2e.incident_helpers import policy_with
from tests.harness import BotHarness
from tests.waiting import until

REQUESTER = "U0ALICE"
APPROVER = "U0BOB"
SECOND = "U0CAROL"
OUTSIDER = "U0EVE"


def remediation_policy(services: dict[str, Any], **roles: Any) -> Any:
    """The built-in policy with `services`, Bob and Carol as approvers (unless overridden)."""
    return policy_with(
        services=services,
        roles={"approvers": [APPROVER, SECOND], "high_risk_approvals": 2, **roles},
    )


def request_messages(harness: BotHarness) -> list[dict[str, Any]]:
    return [
        c.response["message"] | {"channel": c.response["channel"]}
        for c in harness.double.calls_to("chat.postMessage")
        if c.ok
        and str(c.params.get("text", "")).startswith("Remediation #")
        and not c.params.get("thread_ts")
    ]


async def press_fix(
    harness: BotHarness, summary: dict[str, Any], button: dict[str, Any]
) -> dict[str, Any]:
    """The requester presses a diagnosis summary's fix `button`: the one request message it
    posted."""
    before = len(request_messages(harness))
    response = await harness.click(
        button["action_id"],
        value=button["value"],
        message=summary,
        channel_id=summary["channel"],
        message_ts=summary["ts"],
        user_id=REQUESTER,
    )
    assert response.status == 200
    [answer] = await harness.replies()
    await harness.settle()
    posted = request_messages(harness)
    assert len(posted) == before + 1, answer
    return posted[-1]


async def request(
    harness: BotHarness, text: str, *, user: str = REQUESTER, channel: str = "C0GENERAL"
) -> tuple[str, dict[str, Any] | None]:
    """`/remediate <text>`: the private answer, and the request message when one was posted."""
    before = len(request_messages(harness))
    response = await harness.command(text, command="/remediate", user_id=user, channel_id=channel)
    assert response.status == 200, response
    [answer] = await harness.replies()
    await harness.settle()
    posted = request_messages(harness)
    return str(answer["text"]), (posted[-1] if len(posted) > before else None)


async def click(
    harness: BotHarness, message: dict[str, Any], *, user: str, verb: str = "approve"
) -> str:
    """Press Approve (or Deny) on a request message; return the clicker's private answer."""
    action = views.APPROVE_ACTION if verb == "approve" else views.DENY_ACTION
    response = await harness.click(
        action,
        message=message,
        channel_id=message["channel"],
        message_ts=message["ts"],
        user_id=user,
    )
    assert response.status == 200
    [answer] = await harness.replies()
    return str(answer["text"])


async def finish(harness: BotHarness, *numbers: int) -> None:
    """Let started executions end and their messages go out. A click is acknowledged before
    its approval is processed, so name the requests whose outcome to wait for: an execution
    not yet started when this is called would otherwise be missed."""
    service = harness.services.remediation

    async def decided() -> bool:
        for number in numbers:
            if not (await service.get(number)).status.is_final:
                return False
        return True

    await until(decided, f"requests {numbers} to reach an outcome", timeout=30)
    await service.wait_idle()
    await harness.settle()


def request_id(message: dict[str, Any]) -> int:
    return int(str(message["text"]).split("#", 1)[1].split(" ", 1)[0])


def final_update(harness: BotHarness, message: dict[str, Any]) -> dict[str, Any]:
    updates = [
        c.params
        for c in harness.double.calls_to("chat.update")
        if c.ok and c.params.get("ts") == message["ts"]
    ]
    assert updates, "the request message was never updated"
    return updates[-1]


def thread_replies(harness: BotHarness, message: dict[str, Any]) -> list[str]:
    return [
        str(c.params.get("text"))
        for c in harness.double.calls_to("chat.postMessage")
        if c.ok and c.params.get("thread_ts") == message["ts"]
    ]


async def audit_actions(harness: BotHarness) -> list[tuple[str, str, str]]:
    return [
        (e.action, e.actor, e.outcome)
        async for e in harness.services.audit.entries()
        if e.action.startswith("remediation.")
    ]
