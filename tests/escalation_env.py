"""What the escalation tests share: policies, and services on a fake clock around the Slack
double (the real SlackNotifier and SlackDirectory, over HTTP)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import FakeClock
from bot.console.workspace import RecordedCall, SlackDouble
from bot.escalation import ReminderKind
from bot.incidents.schemas import DeclareIncident
from bot.models import Actor, Incident, Severity
from bot.policy import Policy, load_policy, parse_policy
from bot.reminders import Reminder, ReminderStatus
from bot.services import Services, build_services
from bot.slack.notifier import SlackDirectory, SlackNotifier
from bot.slack.report_publisher import SlackReportPublisher
from bot.store import create_store
from tests.harness import BOT_TOKEN, openapi_spec

# The runbook's matrices, with a London working calendar for P3's business day.
MATRIX_POLICY = """\
announce_channel: C0INCIDENTS
war_room_severities: [P0, P1]
calendar:
  timezone: Europe/London
  working_days: [mon, tue, wed, thu, fri]
  working_hours: "09:00-17:00"
  holidays: [2026-12-25]
severities:
  P0: {ack_within: 15m, resolve_within: 2h, update_every: 30m}
  P1: {ack_within: 30m, resolve_within: 4h, update_every: 1h}
  P2: {ack_within: 2h, resolve_within: 24h, update_every: 4h}
  P3: {ack_within: 1bd, resolve_within: 1w, update_every: null}
escalation:
  P0:
    - {after: 0, notify: [U0ONCALL]}
    - {after: 30m, notify: [U0ENGLEAD, S0SRE]}
    - {after: 1h, notify: [U0VPENG]}
  P1:
    - {after: 0, notify: [U0ONCALL]}
    - {after: 30m, notify: [U0ENGLEAD, S0SRE]}
  P2:
    - {after: 0, notify: [U0ONCALL]}
    - {after: 30m, notify: [U0TEAMLEAD]}
  P3:
    - {after: 0, notify: [U0ASSIGNED]}
    - {after: 30m, notify: [U0TEAMLEAD]}
"""

# Durations in seconds, so a whole escalation runs in a few seconds of real time.
SECONDS_POLICY = """\
announce_channel: C0INCIDENTS
war_room_severities: []
severities:
  P0: {ack_within: 3, resolve_within: 3600, update_every: 3600}
  P1: {ack_within: 3, resolve_within: 3600, update_every: 3600}
  P2: {ack_within: 3, resolve_within: 3600, update_every: 3600}
  P3: {ack_within: 3, resolve_within: 3600}
escalation:
  P1:
    - {after: 0, notify: [U0ONCALL]}
    - {after: 2, notify: [U0LEAD, S0SRE]}
"""

SRE_GROUP = {"S0SRE": ["U0SRE1", "U0SRE2", "U0ENGLEAD"]}  # the lead is in the group too
FRIDAY_2PM = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)  # 14:00 in London too (GMT)
ALICE = Actor("U0ALICE", "alice")
BOB = Actor("U0BOB", "bob")


def matrix_policy() -> Policy:
    return parse_policy(MATRIX_POLICY, source="<matrix policy>")


def seconds_policy() -> Policy:
    return parse_policy(SECONDS_POLICY, source="<seconds policy>")


def probe(owner: object, method: str) -> list[tuple[tuple[Any, ...], Any]]:
    """Record every call of the async `owner.method` that returned, with its arguments and
    result, and pass it through unchanged: the positive signal that it ran (a sweep, a job's
    attempt to fire) before a test asserts that nothing came of it. Install it before
    anything captures the method (the scheduler binds `sweep` when it starts)."""
    real = getattr(owner, method)
    returned: list[tuple[tuple[Any, ...], Any]] = []

    async def recorded(*args: Any) -> Any:
        result = await real(*args)
        returned.append((args, result))
        return result

    setattr(owner, method, recorded)
    return returned


def policy_without_paging() -> Policy:
    """The built-in policy with no escalation levels: for tests that count other messages."""
    return load_policy(None).model_copy(update={"escalation": {}})


@dataclass
class Env:
    """Services on a fake clock; `step()` moves time and runs what came due."""

    services: Services
    clock: FakeClock
    double: SlackDouble

    async def declare(
        self, severity: str = "P1", title: str = "Checkout down", actor: Actor = ALICE
    ) -> Incident:
        command = DeclareIncident(severity=Severity(severity), title=title)
        incident = await self.services.incidents.declare(command, actor)
        await self.deliver()
        return incident

    async def deliver(self) -> None:
        await self.services.dispatcher.drain()

    async def step(self, **delta: float) -> int:
        """Advance the clock, fire what is due, deliver it; return how many fired."""
        self.clock.advance(**delta)
        fired = await self.services.reminders.fire_due()
        await self.deliver()
        return fired

    async def reminders(self, incident: Incident, *statuses: ReminderStatus) -> list[Reminder]:
        return await self.services.escalation.reminders_for(incident.id, statuses)

    async def pending(self, incident: Incident) -> dict[tuple[ReminderKind, int], datetime]:
        rows = await self.reminders(incident, ReminderStatus.PENDING)
        return {(r.kind, r.level): r.due_at for r in rows}

    def posts(self, containing: str = "") -> list[RecordedCall]:
        """Successful chat.postMessage calls (channels and DMs) whose text contains this."""
        return [
            call
            for call in self.double.calls_to("chat.postMessage")
            if call.ok and containing in str(call.params.get("text", ""))
        ]

    def dms(self, containing: str = "") -> dict[str, int]:
        """How many DMs each user received whose text contains this."""
        users = {
            call.response["channel"]["id"]: call.params["users"]
            for call in self.double.calls_to("conversations.open")
            if call.ok
        }
        counts: dict[str, int] = {}
        for call in self.posts(containing):
            user = users.get(str(call.response.get("channel")))
            if user is not None:
                counts[user] = counts.get(user, 0) + 1
        return counts

    async def timeline_kinds(self, incident: Incident) -> list[str]:
        return [event.kind for event in await self.services.incidents.timeline(incident.id)]

    async def audit_actions(self, incident: Incident) -> list[tuple[str, str, str]]:
        return [
            (entry.action, entry.actor, entry.outcome)
            async for entry in self.services.audit.entries(incident_id=incident.id)
        ]


async def start_env(
    database_url: str,
    *,
    policy: Policy | None = None,
    clock: FakeClock | None = None,
    usergroups: dict[str, Sequence[str]] | None = None,
    users: dict[str, dict[str, Any]] | None = None,
    env: Mapping[str, str] | None = None,
) -> Env:
    double = SlackDouble(
        bot_token=BOT_TOKEN,
        openapi_spec=openapi_spec(),
        usergroups=usergroups if usergroups is not None else SRE_GROUP,
        users=users,
    )
    await double.start()
    client = AsyncWebClient(token=BOT_TOKEN, base_url=double.api_url)
    clock = clock or FakeClock(FRIDAY_2PM)
    services = build_services(
        policy=policy or matrix_policy(),
        store=create_store(database_url),
        notifier=SlackNotifier(client),
        directory=SlackDirectory(client),
        clock=clock,
        publisher=SlackReportPublisher(client),
        env=env,  # the paging services' keys (None: the process's environment)
    )
    # No background loops: each test decides when time passes and what runs.
    await services.start(run_dispatcher=False, run_scheduler=False)
    return Env(services=services, clock=clock, double=double)


async def stop_env(env: Env) -> None:
    await env.services.close()
    await env.double.stop()
    assert env.double.violations == [], env.double.violations
