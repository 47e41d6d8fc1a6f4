"""The request message's "Who may approve" line: whole mentions, cut within a section."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from bot.remediation.plans import Preview
from bot.remediation.storage import Request, Status
from bot.slack import remediation_blocks as views

AT = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)


def _request() -> Request:
    return Request(
        id=7,
        action="kubernetes.scale",
        service="checkout",
        params={"replicas": 6},
        risk="medium",
        preview=Preview("scale deployment checkout in namespace shop from 3 to 6 replicas"),
        status=Status.REQUESTED,
        requested_by="U0ALICE",
        requested_at=AT,
        expires_at=AT,
        approvals_needed=1,
        approvals=(),
        decided_by=None,
        decided_at=None,
        incident_id=None,
        channel_id="C0GENERAL",
        message_ts=None,
        runner=None,
        started_at=None,
        finished_at=None,
        outcome="",
        result={},
        origin="command",
    )


def test_a_long_approver_list_is_cut_between_mentions_within_the_section_limit() -> None:
    approvers = [f"U{n:010d}" for n in range(600)] + ["S0SRE"]
    line = views.approvers_line(_request(), approvers)
    assert len(line) < views.SECTION_MAX
    shown = re.findall(r"<@(U\d{10})>", line)
    assert shown == approvers[: len(shown)] and len(shown) < 600
    assert f" and {601 - len(shown)} more (not <@U0ALICE>, who asked)" in line
    assert line.count("<") == line.count(">")  # no mention cut in two


def test_only_the_requester_listed_says_the_policy_needs_fixing() -> None:
    line = views.approvers_line(_request(), ["U0ALICE"])
    assert line == "*Who may approve:* nobody but the requester: fix the policy's approvers."
    line = views.approvers_line(_request(), [])  # a policy changed since: none listed
    assert line == "*Who may approve:* nobody: the policy lists no approvers for it."


def test_the_requester_is_named_as_excluded_only_when_they_could_be_read_as_listed() -> None:
    assert views.approvers_line(_request(), ["U0BOB"]) == "*Who may approve:* <@U0BOB>"
    assert views.approvers_line(_request(), ["U0BOB", "U0ALICE"]) == (
        "*Who may approve:* <@U0BOB> (not <@U0ALICE>, who asked)"
    )
