"""A cut in mrkdwn keeps entities and control sequences whole: `&am…` or a raw `<@U0AL…`
on screen is a cut gone wrong (bot.slack.escape.clip_mrkdwn, used by every section)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from bot.console.workspace.checks import check_markup, check_message
from bot.diagnostics.findings import CheckRun, Finding, Grade, Report
from bot.remediation.read_models import ApprovalWaiting
from bot.slack import blocks
from bot.slack import diagnosis_blocks as views
from bot.slack.escape import clip_mrkdwn, escape_mrkdwn
from bot.slack.home import approval_blocks

# An entity cut short: `&`, `&a`, `&am`, `&amp`, `&l`, `&lt`, `&g`, `&gt` then the ellipsis.
CUT_ENTITY = re.compile(r"&(?:a|am|amp|l|lt|g|gt)?…")


def test_a_cut_leaves_out_what_it_would_split() -> None:
    assert clip_mrkdwn("short", 10) == "short"
    assert clip_mrkdwn("abcdef&amp;gh", 10) == "abcdef…"  # not `abcdef&am…`
    assert clip_mrkdwn("abc <@U0ALICE> def", 10) == "abc …"  # not `abc <@U0A…`
    assert clip_mrkdwn("<@U0ALICE> and some", 14) == "<@U0ALICE> an…"
    assert len(clip_mrkdwn("x" * 5000, 3000)) == 3000


def test_a_section_cut_at_its_limit_keeps_a_mention_whole() -> None:
    # The cut fell inside the mention: Slack showed `<@U0ALIC…` as text and pinged nobody.
    text = "x" * 2990 + " by <@U0ALICE> at the end"
    block = blocks.section(text)
    assert check_markup({"blocks": [block]}) == []
    assert block["text"]["text"].endswith("by …")


def test_a_diagnosis_cut_never_splits_an_entity() -> None:
    # Findings are escaped before they are cut: `&` became `&amp;`, and the cut ended
    # sections with `&am…`.
    noisy = "lock & wait <pid> " * 400
    findings = tuple(
        Finding(check="postgres", title=f"t{n}", grade=Grade.WARN, summary=noisy[n:])
        for n in range(8)
    )
    run = CheckRun(name="postgres", system="postgres", seconds=1.0, findings=findings)
    report = Report("orders", datetime(2026, 12, 5, tzinfo=UTC), 1.0, (run,))
    summary = views.summary_blocks(report, actor="U0ALICE")
    payload = {"text": views.summary_text(report), "blocks": summary}
    assert check_message(payload) == [] and check_markup(payload) == []
    texts = [b["text"]["text"] for b in summary if b["type"] == "section"]
    assert texts and all(escape_mrkdwn("&") in t for t in texts)
    assert [t[-8:] for t in texts if CUT_ENTITY.search(t)] == []


def test_an_approval_on_the_app_home_keeps_who_asked_and_its_expiry() -> None:
    # The summary was cut to 2,500 characters and then escaped: a statement full of `<`
    # grew past the section's 3,000 and the cut took who asked, the approvals and the expiry.
    waiting = ApprovalWaiting(
        request_id=7,
        action="postgres.terminate_idle",
        service="orders",
        summary="terminate pids where age > 30m and a < b " * 80,
        risk="high",
        requested_by="U0ALICE",
        expires_at=datetime(2026, 12, 5, 4, 30, tzinfo=UTC),
        approvals=0,
        approvals_needed=1,
    )
    [line, _buttons] = approval_blocks(waiting)
    text = line["text"]["text"]
    assert len(text) <= 3000 and "requested by <@U0ALICE>" in text and "expires <!date^" in text
    assert check_markup({"blocks": [line]}) == []
