"""What the bot says about drills: the drill report posted when a drill ends."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.clock import utc_from_timestamp
from bot.durations import humanize_seconds
from bot.incidents.drill_report import DrillReport
from bot.models import Incident
from bot.policy.paging import PROVIDER_NAMES
from bot.slack.blocks import header, section
from bot.slack.escalation_text import mentions
from bot.slack.escape import escape_mrkdwn
from bot.slack.templates import said, slack_date, user

PAGES_SHOWN = 10
CHECKS_SHOWN = 6


def checks_line(incident: Incident, catalog: list[str]) -> str:
    """Said when a drill is declared: whose read-only checks it runs, or why none (a
    scenario written `checkout:failover`, or naming a service the catalog lacks, ran none
    and said so only in the report at its end)."""
    if incident.services:
        names = ", ".join(f"`{escape_mrkdwn(name)}`" for name in incident.services)
        return (
            f"The read-only checks of {names} run in a moment; their summary is posted in its"
            " channel."
        )
    if not catalog:
        return "No service is catalogued, so no checks run."
    example = escape_mrkdwn(sorted(catalog)[0])
    return (
        "No catalogued service is named, so no checks run: start the scenario with one and a"
        f" colon (`{example}: …`) or add `service={example}`."
        f" Services: {escape_mrkdwn(', '.join(sorted(catalog)))}."
    )


def report_title(report: DrillReport) -> str:
    return f"[DRILL] Drill report: {report.incident_id}"


def _pages(report: DrillReport) -> list[str]:
    if not report.pages:
        return ["*Paged*: nobody (no escalation level for this severity)"]
    lines = ["*Paged*"]
    for page in report.pages[:PAGES_SHOWN]:
        after = humanize_seconds(max(0.0, page.at - report.declared_at))
        how = f", escalated by {user(page.by)}" if page.by else ""
        lines.append(
            f"• Level {page.level}, {after} after the declaration{how}: {mentions(page.recipients)}"
        )
    if len(report.pages) > PAGES_SHOWN:
        lines.append(f"• … and {len(report.pages) - PAGES_SHOWN} more pages")
    for provider, state in sorted(report.providers.items()):
        lines.append(f"• {PROVIDER_NAMES.get(provider, provider)}: {escape_mrkdwn(state)}")
    if report.providers_skipped:
        names = ", ".join(PROVIDER_NAMES.get(p, p) for p in report.providers_skipped)
        lines.append(
            f"• {names}: not paged, as drills page Slack only "
            "(`drills: {page_providers: true}` pages them too)"
        )
    return lines


def _answer(report: DrillReport) -> str:
    if report.acknowledged_by is None or report.ack_seconds is None:
        return "*Acknowledged*: never, until the drill ended"
    level = f" (level {report.answered_level} answered)" if report.answered_level else ""
    return (
        f"*Acknowledged* by {user(report.acknowledged_by)} "
        f"{humanize_seconds(report.ack_seconds)} after the declaration{level}"
    )


def _checks(report: DrillReport, services: Sequence[str]) -> list[str]:
    # It once told every drill to name `checkout`, catalogued or not, and a drill that
    # named a service whose checks had not reported to name one.
    if not report.checks and services:
        names = ", ".join(f"`{escape_mrkdwn(name)}`" for name in services)
        return [f"*Checks*: none reported: those of {names} had not finished when it ended"]
    if not report.checks:
        return [
            "*Checks*: none ran, as it named no catalogued service (start the scenario with"
            f" one and a colon: `/incident drill {report.severity} &lt;service&gt;: …`)"
        ]
    lines = ["*Checks*"]
    for check in report.checks[:CHECKS_SHOWN]:
        problems = ", ".join(check.problems[:6])
        found = f": {escape_mrkdwn(problems)} not OK" if problems else ": every check OK"
        lines.append(
            f"• {escape_mrkdwn(check.service)} graded *{escape_mrkdwn(check.grade)}*{found} "
            f"({slack_date(utc_from_timestamp(check.at))})"
        )
    return lines


def report_text(report: DrillReport, services: Sequence[str] = ()) -> str:
    ended = (
        f", ended after {humanize_seconds(report.ended_at - report.declared_at)}"
        if report.ended_at is not None
        else ""
    )
    lines = [
        f"{report.severity} drill *{report.incident_id}*: {said(report.title)} "
        f"(declared {slack_date(report.declared)}{ended})",
        *_pages(report),
        _answer(report),
        *_checks(report, services),
    ]
    return "\n".join(lines)


def report_blocks(incident: Incident, report: DrillReport) -> list[dict[str, Any]]:
    return [header(report_title(report)), section(report_text(report, incident.services))]
