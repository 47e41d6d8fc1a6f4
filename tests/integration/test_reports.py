"""Reports on a fake clock, on SQLite and PostgreSQL: every statistic, the report, the
two-step upload through the Slack double, the chart, action-item reminders, similar
incidents and the App Home."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from slack_sdk.models.views import View

from bot.home.service import HOME
from bot.incidents.schemas import DeclareIncident
from bot.models import Severity
from bot.policy import parse_policy
from bot.reminders import ReminderStatus
from bot.reports import markdown
from bot.reports.chart import build_figure, render_png, week_labels
from bot.reports.forms import (
    IMPACT_TIMES,
    TEXT_FIELDS,
    PostmortemInput,
    parse_postmortem_form,
    shown_digest,
)
from bot.reports.models import NewActionItem
from bot.slack import report_blocks
from bot.slack.home import home_view
from tests.escalation_env import (
    ALICE,
    BOB,
    FRIDAY_2PM,
    MATRIX_POLICY,
    Env,
    start_env,
    stop_env,
)

MIN = 60
HOUR = 3600


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/reports.db"
    return request.getfixturevalue("migrated_postgres_url")


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[Env]:
    env = await start_env(database_url)
    yield env
    await stop_env(env)


async def _incident(env: Env, severity: str, title: str, ack: float | None, resolve: float | None):
    """Declare now; acknowledge after `ack` s and resolve after `resolve` s (from declaration)."""
    incident = await env.declare(severity, title)
    start = env.clock.now()
    if ack is not None:
        env.clock.set(start + timedelta(seconds=ack))
        await env.services.incidents.acknowledge(incident.id, ALICE)
    if resolve is not None:
        env.clock.set(start + timedelta(seconds=resolve))
        await env.services.incidents.resolve(incident.id, ALICE, summary="rolled back")
    await env.deliver()
    return incident


async def test_every_figure_on_a_fake_clock(env: Env) -> None:
    # Three P1s: ack after 10, 20, 60 min (target 30 min); resolved after 1, 2, 5 h (4 h).
    first = await _incident(env, "P1", "Checkout 502", 10 * MIN, 1 * HOUR)
    env.clock.advance(hours=1)
    await _incident(env, "P1", "Search slow", 20 * MIN, 2 * HOUR)
    env.clock.advance(hours=1)
    await _incident(env, "P1", "Login errors", 60 * MIN, 5 * HOUR)
    # A P3 declared on Friday 16:00 London: its 1-business-day ack target is Monday 16:00,
    # so an ack on Monday 10:00 (66 h later) is within target.
    env.clock.set(FRIDAY_2PM + timedelta(days=7, hours=2))  # Friday 4 Dec, 16:00
    p3 = await _incident(env, "P3", "Typo on the status page", 66 * HOUR, 67 * HOUR)
    # An open P2, never acknowledged: after its 2 h ack target it counts as a breach.
    env.clock.advance(hours=1)
    await _incident(env, "P2", "Cache misses", None, None)
    env.clock.advance(hours=3)
    # MTTD for the first P1: impact began 30 min before declaration, detected 10 min before.
    await env.services.postmortems.save_postmortem(
        first.id,
        ALICE,
        PostmortemInput(
            started_at=first.declared_at - timedelta(minutes=30),
            detected_at=first.declared_at - timedelta(minutes=10),
        ),
    )

    stats = await env.services.reports.stats(30)
    rows = {row.severity: row for row in stats.by_severity}
    p1 = rows[Severity.P1]
    assert p1.incidents == 3
    assert (p1.mtta.count, p1.mtta.median, p1.mtta.p90) == (3, 20 * MIN, 52 * MIN)
    assert (p1.mttr.count, p1.mttr.median, p1.mttr.p90) == (3, 2 * HOUR, 4 * HOUR + 24 * MIN)
    assert (p1.ack_breaches, p1.resolve_breaches) == (1, 1)
    assert (p1.mttd.count, p1.mttd.median, p1.mttd.p90) == (1, 20 * MIN, 20 * MIN)
    p3_row = rows[Severity.P3]
    assert (p3_row.incidents, p3_row.ack_breaches, p3_row.resolve_breaches) == (1, 0, 0)
    assert p3_row.mtta.median == 66 * HOUR
    p2 = rows[Severity.P2]
    assert (p2.incidents, p2.mtta.count, p2.mttr.count, p2.ack_breaches) == (1, 0, 0, 1)
    assert rows[Severity.P0].incidents == 0
    assert stats.total == 5
    # Weeks start on Monday 00:00 UTC; every week of the window is there, empty ones too.
    by_week = {week.start.date().isoformat(): week for week in stats.weeks}
    assert len(stats.weeks) == 6 and min(by_week) == "2026-11-02"
    assert by_week["2026-11-23"].counts == {Severity.P1: 3}
    assert by_week["2026-11-23"].mttr_median == 2 * HOUR
    assert by_week["2026-11-30"].counts == {Severity.P3: 1}
    assert by_week["2026-11-30"].mttr_median == 67 * HOUR
    assert by_week["2026-12-07"].counts == {Severity.P2: 1}
    assert by_week["2026-12-07"].mttr_median is None
    assert by_week["2026-11-16"].total == 0
    # The P3's report counts its duration in working hours: Fri 16-17, Mon 09-11 = 3 h.
    facts = await env.services.reports.report(p3.id)
    assert facts.working_seconds == 3 * HOUR
    assert facts.first_acknowledged_at == p3.declared_at + timedelta(hours=66)


async def test_reopening_keeps_a_missed_target_and_a_quick_resolution_misses_none(
    env: Env,
) -> None:
    """Two wrong figures of old: a P1 acknowledged late, resolved and reopened read 'met'
    (its targets moved to the reopening, the first ack measured against them), and a P2
    resolved in 5 minutes with no acknowledgement counted as an acknowledgement breach."""
    late = await _incident(env, "P1", "Late ack", 45 * MIN, 1 * HOUR)
    env.clock.advance(hours=3)
    await env.services.incidents.reopen(late.id, ALICE, reason="back again")
    env.clock.advance(minutes=5)
    await env.services.incidents.acknowledge(late.id, ALICE)
    await env.services.incidents.resolve(late.id, ALICE, summary="fixed for good")
    # Resolved for good 4 h 5 min after declaration: its 4 h resolve target was missed.
    quick = await _incident(env, "P2", "False alarm", None, 5 * MIN)
    env.clock.advance(days=1)

    rows = {row.severity: row for row in (await env.services.reports.stats(30)).by_severity}
    assert (rows[Severity.P1].ack_breaches, rows[Severity.P1].resolve_breaches) == (1, 1)
    assert (rows[Severity.P2].ack_breaches, rows[Severity.P2].resolve_breaches) == (0, 0)
    _, text = await env.services.reports.report_markdown(late.id)
    declared = late.declared_at
    assert (
        f"| Acknowledged | {markdown.when(declared + timedelta(minutes=45))}"
        f" (target {markdown.when(declared + timedelta(minutes=30))}: missed) |"
    ) in text
    assert f"(target {markdown.when(declared + timedelta(hours=4))}: missed) |" in text
    _, text = await env.services.reports.report_markdown(quick.id)
    due = markdown.when(quick.declared_at + timedelta(hours=2))
    assert f"| Acknowledged | not acknowledged: resolved first (target {due}: met) |" in text


async def test_a_reopened_incident_reports_and_prefills_the_resolution_that_held(
    env: Env,
) -> None:
    """The postmortem recorded the first fix; the incident reopened (it did not hold) and was
    resolved again. The report and the form's prefill once kept presenting the first fix."""
    incident = await _incident(env, "P2", "Checkout errors", 5 * MIN, HOUR)
    await env.services.postmortems.save_postmortem(
        incident.id, ALICE, PostmortemInput(resolution="Restarted the checkout pods")
    )
    env.clock.advance(hours=1)
    await env.services.incidents.reopen(incident.id, ALICE, reason="errors are back")
    env.clock.advance(hours=1)
    await env.services.incidents.resolve(incident.id, ALICE, summary="Raised the memory limit")

    def section(text: str) -> str:
        return text.split("## Resolution\n", 1)[1].split("\n## ", 1)[0]

    _, text = await env.services.reports.report_markdown(incident.id)
    assert "Raised the memory limit" in section(text)
    assert "Restarted" not in section(text) and markdown.REOPENED_NOTE in section(text)
    _, prefill, _ = await env.services.postmortems.postmortem(incident.id, actor=ALICE)
    assert prefill.resolution == "Raised the memory limit"

    # Saved from that form with only the root cause edited: the resolution stays the latest.
    shown = {name: shown_digest(getattr(prefill, name)) for name in TEXT_FIELDS}
    shown[IMPACT_TIMES] = shown_digest(prefill.started_at, prefill.detected_at)
    form = PostmortemInput(root_cause="Memory leak", resolution=prefill.resolution, shown=shown)
    await env.services.postmortems.save_postmortem(incident.id, BOB, form)
    _, text = await env.services.reports.report_markdown(incident.id)
    assert "Raised the memory limit" in section(text) and "Restarted" not in section(text)
    assert "Memory leak" in text
    _, prefill, _ = await env.services.postmortems.postmortem(incident.id, actor=ALICE)
    assert prefill.resolution == "Raised the memory limit"


async def test_report_has_every_section_and_is_uploaded_in_two_steps(env: Env) -> None:
    incident = await _incident(env, "P2", "Checkout <!channel> 502", 5 * MIN, None)
    due = env.clock.now() + timedelta(days=3)
    await env.services.postmortems.save_postmortem(
        incident.id,
        ALICE,
        PostmortemInput(
            root_cause="Connection pool exhausted",
            lessons="Alert on pool usage",
            action_items=[NewActionItem("Add a pool alert", "U0BOB", due)],
        ),
    )
    _, text = await env.services.reports.report_markdown(incident.id)
    assert text.startswith(f"# Post-incident report: {incident.id}")
    assert "**This incident is still open**" in text  # a draft says so at the top
    for name in markdown.SECTIONS:
        assert f"\n## {name}\n" in text
    assert "| Time to acknowledge | 5 min |" in text
    assert "Connection pool exhausted" in text and "Add a pool alert | @U0BOB" in text
    assert "## Remediation runs\n\n_No remediation was run._" in text  # wired, none made

    await env.services.reports.share_report(incident.id, ALICE, channel=None, request_id=None)
    await env.deliver()
    ticket, complete = (
        env.double.calls_to("files.getUploadURLExternal"),
        env.double.calls_to("files.completeUploadExternal"),
    )
    assert [c.ok for c in ticket] == [True] and [c.ok for c in complete] == [True]
    assert ticket[0].params["filename"] == f"{incident.id}-report.md"
    uploaded = env.double.files[ticket[0].response["file_id"]]
    assert uploaded.completed and uploaded.content == text.encode()
    assert uploaded.channels == [env.services.policy.announce_channel]
    # The comment escapes what the user typed: no @channel ping.
    assert "<!channel>" not in complete[0].params["initial_comment"]


async def test_html_a_person_typed_stays_text_wherever_the_report_is_rendered(env: Env) -> None:
    """The report is Markdown that teams paste into wikis and viewers that render raw HTML:
    a title, impact, root cause or action item holding a tag ran as HTML there."""
    attack = '<img src=x onerror="alert(1)">'
    incident = await env.declare("P2", f"Checkout {attack}")
    await env.services.incidents.resolve(incident.id, ALICE, summary=f"Rolled back {attack}")
    due = env.clock.now() + timedelta(days=3)
    await env.services.postmortems.save_postmortem(
        incident.id,
        ALICE,
        PostmortemInput(
            root_cause="Pool exhausted\n\n<script>alert(2)</script>\n\n- *a list* of `code`",
            affected_users=f"EU shoppers\n\n## Forged heading {attack}",
            lessons="<a href='javascript:alert(3)'>click</a>",
            action_items=[NewActionItem(f"Add a pool alert {attack}", "U0BOB", due)],
        ),
    )
    _, text = await env.services.reports.report_markdown(incident.id)
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
    for tag in ("<img", "<script", "<a ", "<h2>Forged"):
        assert tag not in html
    # As text: heading, title, affected users, two timeline lines, resolution, action item.
    assert html.count("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;") == 7
    # What people write in Markdown is still theirs; the bot's own structure is intact.
    assert "<li><em>a list</em> of <code>code</code></li>" in html
    assert [line for line in text.splitlines() if line.startswith("## ")] == [
        f"## {name}" for name in (*markdown.SECTIONS, "Remediation runs")
    ]


async def test_a_code_block_left_open_in_the_postmortem_ends_with_its_section(env: Env) -> None:
    # A pasted stack trace opened with ``` and never closed made every later section
    # (Resolution, Action items, Lessons learned...) one block of code in any viewer.
    incident = await env.declare("P2", "Checkout 502")
    due = env.clock.now() + timedelta(days=3)
    await env.services.postmortems.save_postmortem(
        incident.id,
        ALICE,
        PostmortemInput(
            root_cause="Pool exhausted:\n\n```python\nTraceback (most recent call last):",
            resolution="Rolled back\n  ~~~~\n  ~~~ not a close",
            prevention="```\nclosed\n```\nthen `inline`",
            lessons="Alert on pool usage",
            action_items=[NewActionItem("Add a pool alert", "U0BOB", due)],
        ),
    )
    _, text = await env.services.reports.report_markdown(incident.id)
    html = MarkdownIt("commonmark").enable("table").render(text)
    for name in markdown.SECTIONS[3:]:
        assert f"<h2>{name}</h2>" in html, html
    assert '<code class="language-python">Traceback (most recent call last):\n</code>' in html
    assert "<td>Add a pool alert</td>" in html and "<p>Alert on pool usage</p>" in html
    assert "<p>then <code>inline</code></p>" in html  # a closed block is left as it was
    assert html.count("<pre>") == 3


async def test_an_action_items_due_date_is_the_day_its_owner_picked_in_the_teams_zone(
    database_url: str,
) -> None:
    """Due means the end of the picked working day in the team's time zone: 17:00 in Los
    Angeles is 01:00 UTC the next day, and the report showed that next day."""
    policy = parse_policy(
        MATRIX_POLICY.replace("Europe/London", "America/Los_Angeles"), source="<la>"
    )
    env = await start_env(database_url, policy=policy)
    try:
        incident = await env.declare("P2", "Search slow")
        form = parse_postmortem_form(
            {
                "item_0_text": "Add index check",
                "item_0_owner": "U0BOB",
                "item_0_due": "2026-12-10",
            },
            calendar=policy.calendar,
            now=env.clock.now(),
        )
        await env.services.postmortems.save_postmortem(incident.id, ALICE, form)
        _, text = await env.services.reports.report_markdown(incident.id)
        assert "| Add index check | @U0BOB | 2026-12-10 | open |" in text
    finally:
        await stop_env(env)


async def test_upload_survives_a_slack_outage(env: Env) -> None:
    incident = await _incident(env, "P2", "Disk full", 5 * MIN, 30 * MIN)
    env.double.http_error("files.completeUploadExternal", status=503)
    await env.services.reports.share_report(incident.id, ALICE, channel=None, request_id=None)
    await env.deliver()
    assert not any(f.completed for f in env.double.files.values())
    env.clock.advance(seconds=10)  # past the outbox's back-off
    await env.deliver()
    assert sum(f.completed for f in env.double.files.values()) == 1


async def test_chart_is_a_png_whose_bar_groups_are_the_weeks(env: Env) -> None:
    await _incident(env, "P1", "API down", 5 * MIN, HOUR)
    env.clock.advance(days=8)
    await _incident(env, "P0", "Data loss", 5 * MIN, 3 * HOUR)
    stats = await env.services.reports.stats(21)
    png = render_png(stats)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (1100, 450)
    counts_axes, mttr_axes = build_figure(stats).axes
    labels = [t.get_text() for t in counts_axes.get_xticklabels()]
    assert labels == week_labels(stats) and len(labels) == len(stats.weeks) == 4
    bars = {c.get_label(): [p.get_height() for p in c.patches] for c in counts_axes.containers}
    assert bars["P1"] == [week.counts.get(Severity.P1, 0) for week in stats.weeks]
    assert bars["P0"] == [week.counts.get(Severity.P0, 0) for week in stats.weeks]
    assert sum(bars["P1"]) == sum(bars["P0"]) == 1
    assert len(mttr_axes.patches) == len(stats.weeks)

    await env.services.reports.share_stats(21, ALICE, channel="C0GENERAL")
    await env.deliver()
    (upload,) = [f for f in env.double.files.values() if f.completed]
    assert upload.content == png and upload.channels == ["C0GENERAL"]


async def test_a_week_with_nothing_resolved_is_told_from_a_median_of_zero(env: Env) -> None:
    # Both drew no MTTR bar and nothing else: "none resolved" read as "resolved at once".
    await _incident(env, "P1", "Flapping alert", 0, 0)  # resolved within the second
    env.clock.advance(days=8)
    await _incident(env, "P2", "Still burning", 5 * MIN, None)
    stats = await env.services.reports.stats(21)
    _, mttr_axes = build_figure(stats).axes
    said = {
        round(text.xy[0]): text.get_text()
        for text in mttr_axes.texts
        if text.get_gid() == "mttr_label"
    }
    weeks = [(week.total, week.mttr_median) for week in stats.weeks]
    resolved = weeks.index((1, 0.0))
    burning = weeks.index((1, None))
    assert said == {resolved: "0 s", burning: "none resolved"}  # empty weeks say nothing
    lines = report_blocks.stats_lines(stats)
    assert any(
        line.startswith("P2: 1 incident(s)") and "MTTR none resolved yet" in line for line in lines
    ), lines
    assert any(
        line.startswith("P1: 1 incident(s)") and "MTTR 0 s median" in line for line in lines
    ), lines
    assert any(line.startswith("P3: 0 incident(s)") and "MTTR — " in line for line in lines)
    assert "MTTR none resolved yet" in str(report_blocks.stats_blocks(stats))


async def test_action_item_reminder_fires_once_survives_restart_and_stops_when_closed(
    env: Env, database_url: str
) -> None:
    incident = await _incident(env, "P2", "Queue backlog", 5 * MIN, HOUR)
    due = env.clock.now() + timedelta(hours=5)
    _, (item,) = await env.services.postmortems.save_postmortem(
        incident.id,
        ALICE,
        PostmortemInput(action_items=[NewActionItem("Raise the queue limit", "U0BOB", due)]),
    )
    assert await env.step(hours=4) == 0  # not due yet
    assert env.dms("Action item") == {}
    # A restart before it comes due: a new process on the same database fires it once.
    await env.services.close()
    env2 = await start_env(database_url, clock=env.clock)
    try:
        assert await env2.step(hours=2) == 1
        assert await env2.step(minutes=1) == 0  # exactly once
        assert env2.dms("Action item") == {"U0BOB": 1}
        assert "#" + str(item.id) in env2.posts("Action item")[0].params["text"]
        # Still open a business day later: reminded again, once.
        await env2.step(days=3)  # the incident's preliminary review comes due too
        assert env2.dms("Action item") == {"U0BOB": 2}
        closed, changed = await env2.services.postmortems.close_action_item(item.id, BOB)
        assert changed and closed.closed_at is not None
        assert (await env2.services.postmortems.close_action_item(item.id, BOB))[1] is False
        await env2.step(days=10)
        assert env2.dms("review") != {}  # time did pass: the formal review fired meanwhile
        assert env2.dms("Action item") == {"U0BOB": 2}
        live = await env2.reminders(incident, ReminderStatus.PENDING)
        assert [r for r in live if r.kind == "action_item"] == []
    finally:
        await stop_env(env2)
        env.services = env2.services  # already closed; stop_env(env) closes it again


async def test_only_an_action_items_first_reminder_goes_on_the_timeline(env: Env) -> None:
    """Each repeat of an overdue item's reminder once added a timeline line: months overdue,
    the report's Timeline filled with them and the catch-up's last lines were all reminders.
    Every reminder keeps its audit entry."""
    incident = await _incident(env, "P2", "Queue backlog", 5 * MIN, HOUR)
    due = env.clock.now() + timedelta(hours=5)
    await env.services.postmortems.save_postmortem(
        incident.id,
        ALICE,
        PostmortemInput(action_items=[NewActionItem("Raise the queue limit", "U0BOB", due)]),
    )
    await env.step(hours=6)
    for _ in range(6):  # a week and more overdue: reminded every business day
        await env.step(days=1)
    reminders = env.dms("Action item")["U0BOB"]
    assert reminders >= 4
    timeline = await env.services.incidents.timeline(incident.id)
    reminded = [e.text for e in timeline if e.kind == "reminded" and "action item" in e.text]
    assert len(reminded) == 1 and "is due: Raise the queue limit" in reminded[0]
    audited = [a for a, _, _ in await env.audit_actions(incident)]
    assert audited.count("reports.action_item_reminder") == reminders
    _, text = await env.services.reports.report_markdown(incident.id)
    assert text.count("Raise the queue limit") == 2  # its one timeline line and the item


async def test_each_action_item_has_its_own_reminder_closing_one_leaves_the_other(
    env: Env,
) -> None:
    incident = await _incident(env, "P2", "Queue backlog", 5 * MIN, HOUR)
    due = env.clock.now() + timedelta(hours=5)
    _, (first, second) = await env.services.postmortems.save_postmortem(
        incident.id,
        ALICE,
        PostmortemInput(
            action_items=[
                NewActionItem("Raise the queue limit", "U0BOB", due),
                NewActionItem("Alert on queue depth", "U0ALICE", due),
            ]
        ),
    )
    live = await env.reminders(incident, ReminderStatus.PENDING)
    assert sorted((r.subject, r.level) for r in live if r.kind == "action_item") == [
        (f"action_item:{first.id}", 0),
        (f"action_item:{second.id}", 0),
    ]
    await env.services.postmortems.close_action_item(first.id, BOB)
    assert await env.step(hours=6) == 1  # only the open item's
    assert env.dms("Action item") == {"U0ALICE": 1}


async def test_similar_past_incidents_rank_the_right_one_first(env: Env) -> None:
    history = [
        ("P2", "Redis cache evictions spike", "maxmemory too low"),
        ("P1", "Checkout API returns 502 after deploy", "bad deploy of checkout"),
        ("P3", "Docs typo on pricing page", "typo"),
        ("P2", "Payments webhook latency", "slow provider"),
    ]
    for severity, title, cause in history:
        past = await _incident(env, severity, title, 5 * MIN, HOUR)
        await env.services.postmortems.save_postmortem(
            past.id, ALICE, PostmortemInput(root_cause=cause, resolution=f"fixed: {cause}")
        )
        env.clock.advance(hours=2)
    now = await env.declare("P1", "Checkout returns 502 errors")
    found = await env.services.reports.similar(now.id)
    assert found and found[0].incident.title == "Checkout API returns 502 after deploy"
    assert found[0].root_cause == "bad deploy of checkout"
    assert all(f.incident.id != now.id for f in found) and len(found) <= 3


async def test_app_home_summarises_500_open_incidents_within_100_blocks(env: Env) -> None:
    from bot.incidents import storage as incidents
    from bot.models import Incident, Status

    base = env.clock.now()
    async with env.services.store.transaction() as tx:
        for n in range(500):
            await incidents.insert(
                tx,
                Incident(
                    id=f"INC-20261101-{n:03d}",
                    title=f"Load incident {n}",
                    severity=Severity(f"P{n % 4}"),
                    status=Status.INVESTIGATING,
                    declared_by="U0ALICE" if n % 50 == 0 else "U0CAROL",
                    declared_at=base - timedelta(minutes=n),
                    updated_at=base,
                    roles={"commander": "U0ALICE" if n % 50 == 0 else "U0CAROL"},
                ),
                day="20261101",
                seq=n,
            )
    facts = await env.services.home.home("U0ALICE")
    assert facts.open_total == 500 and len(facts.mine) == 5
    assert facts.open_by_severity == {s: 125 for s in Severity}
    assert [i.severity for i in facts.open_incidents] == [Severity.P0] * 15
    view = home_view(facts)
    assert len(view["blocks"]) <= 100
    View(**view).validate_json()
    assert "…and 485 more" in str(view)
    assert "Approvals waiting for you: 0" in str(view)  # none waiting: the count says so

    await env.services.home.home_opened("U0ALICE")
    await env.deliver()
    (publish,) = env.double.calls_to("views.publish")
    assert publish.ok and publish.params["user_id"] == "U0ALICE"


async def test_the_home_names_the_incident_of_each_action_item(env: Env) -> None:
    # The Home lists one person's items of every incident: "#1 Add a pool alert" and "#2
    # Add a pool alert" did not say which incident each came from.
    due = env.clock.now() + timedelta(days=3)
    declared = [await env.declare("P2", title) for title in ("Checkout 502", "Search slow")]
    for incident in declared:
        await env.services.postmortems.save_postmortem(
            incident.id,
            ALICE,
            PostmortemInput(action_items=[NewActionItem("Add a pool alert", "U0BOB", due)]),
        )
    view = home_view(await env.services.home.home("U0BOB"))
    items = [
        block["text"]["text"]
        for block in view["blocks"]
        if "Add a pool alert" in block.get("text", {}).get("text", "")
    ]
    assert len(items) == 2
    for incident, text in zip(declared, items, strict=True):
        assert f"\n{incident.id} · <@U0BOB> · due" in text, text


async def test_the_home_says_how_long_ago_each_incident_was_declared_as_it_is_read(
    env: Env,
) -> None:
    # The Home is published on a change and then stays as it is: "open 4 s", written in,
    # still read "open 4 s" hours later. Slack's {ago} is worked out when it is read.
    incident = await env.declare("P2", "Checkout 502")
    view = str(home_view(await env.services.home.home("U0ALICE")))
    ts = int(incident.declared_at.timestamp())
    assert f"declared <!date^{ts}^{{ago}}|{markdown.when(incident.declared_at)}>" in view
    assert "open 0 s" not in view and " · open " not in view


async def test_a_change_refreshes_every_homes_viewer_in_two_statements(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each person who opened the App Home gets one refresh per change, debounced, and the
    change reads the outbox once for all of them (it read it once per viewer)."""
    viewers = [f"U0VIEW{n:02d}" for n in range(40)]
    for user_id in viewers:
        await env.services.home.home_opened(user_id)
    await env.deliver()
    assert len(env.double.calls_to("views.publish")) == 40

    reads: list[str] = []
    async with env.services.store.transaction() as probe:
        tx_type = type(probe)
    real = tx_type.fetchall, tx_type.fetchone

    async def fetchall(self: object, sql: str, params: object = ()) -> object:
        if "FROM outbox" in sql:
            reads.append(sql)
        return await real[0](self, sql, params)  # type: ignore[arg-type]

    async def fetchone(self: object, sql: str, params: object = ()) -> object:
        if "FROM outbox" in sql:
            reads.append(sql)
        return await real[1](self, sql, params)  # type: ignore[arg-type]

    monkeypatch.setattr(tx_type, "fetchall", fetchall)
    monkeypatch.setattr(tx_type, "fetchone", fetchone)
    await env.services.incidents.declare(DeclareIncident(severity=Severity.P2, title="A"), ALICE)
    assert len(reads) == 1, reads
    await env.services.incidents.declare(DeclareIncident(severity=Severity.P2, title="B"), ALICE)
    assert len(reads) == 2, reads
    async with env.services.store.transaction() as tx:
        row = await tx.fetchone(
            "SELECT COUNT(*) AS n FROM outbox WHERE kind = ? AND delivered_at IS NULL", (HOME,)
        )
    assert row is not None and row["n"] == 40  # one waiting per viewer, not one per change
    await env.step(seconds=5)
    published = [call.params["user_id"] for call in env.double.calls_to("views.publish")]
    assert sorted(published[40:]) == viewers


async def _published_to(env: Env, since: int) -> list[str]:
    return sorted(c.params["user_id"] for c in env.double.calls_to("views.publish")[since:])


async def _home_viewers(env: Env) -> list[str]:
    async with env.services.store.transaction() as tx:
        rows = await tx.fetchall("SELECT user_id FROM home_viewers ORDER BY user_id")
    return [row["user_id"] for row in rows]


async def test_a_home_not_opened_for_a_week_is_not_refreshed_and_is_pruned(env: Env) -> None:
    """Every change refreshed the Home of everyone who ever opened it, forever: now only of
    who opened it within the window (7 days); the others are forgotten when someone opens
    the Home, and get theirs fresh when they open it again."""
    await env.services.home.home_opened("U0ALICE")
    env.clock.advance(days=6)
    await env.services.home.home_opened("U0BOB")
    env.clock.advance(days=2)  # Alice's last look: 8 days ago; Bob's: 2 days
    await env.deliver()
    before = len(env.double.calls_to("views.publish"))
    await env.declare("P3", "Typo on the status page")
    await env.step(seconds=5)  # past the refresh's debounce
    assert await _published_to(env, before) == ["U0BOB"]
    assert await _home_viewers(env) == ["U0ALICE", "U0BOB"]  # the change's path deletes nothing

    await env.services.home.home_opened("U0CAROL")  # an opening prunes
    assert await _home_viewers(env) == ["U0BOB", "U0CAROL"]
    await env.deliver()
    before = len(env.double.calls_to("views.publish"))
    await env.services.home.home_opened("U0ALICE")  # back: her Home at once, and refreshed
    await env.deliver()
    assert await _published_to(env, before) == ["U0ALICE"]
    before = len(env.double.calls_to("views.publish"))
    await env.declare("P3", "Another typo")
    await env.step(seconds=5)
    assert await _published_to(env, before) == ["U0ALICE", "U0BOB", "U0CAROL"]
