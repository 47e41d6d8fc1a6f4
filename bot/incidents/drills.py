"""Drills: practice incidents through the real machinery. A drill is an incident with a
flag (`Incident.drill`), declared by `IncidentService.declare`; everything else the bot does
for an incident it does for a drill, marked DRILL where it shows. What is a drill's own:

- its read-only checks: on declaration, the catalogued services its scenario names are
  diagnosed (`DRILL_CHECKS`, delivered outside the incident's order so a slow check never
  holds up its pages), in its war room once that is open;
- its report: on resolution the report (bot.incidents.drill_report) is built from the record
  inside the resolving transaction, put on the timeline and in the audit log, and posted in
  the incident channel (`DRILL_REPORT`, after the resolution's own update).

Elsewhere: remediations are refused in a drill's channel (bot.remediation.service), provider
pages are skipped unless `drills: {page_providers: true}` (bot.paging.service), and so is
asking them who is on call (bot.escalation.delivery), statistics,
similar incidents and the App Home leave drills out (bot.reports), `/incident list drills`
lists them apart.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Protocol

from bot import outbox
from bot.clock import Clock
from bot.errors import NotFound, NotifierError, UsageError
from bot.incidents import drill_report, storage
from bot.incidents.changes import IncidentChange, IncidentChanges, Queued
from bot.incidents.drill_report import DrillReport
from bot.incidents.effects import incident_channel
from bot.models import SYSTEM, Actor, Incident
from bot.notify import MessageRef
from bot.outbox import Effect, OutboxDispatcher
from bot.policy import Policy
from bot.policy.paging import PROVIDERS
from bot.store import Store, Tx

log = logging.getLogger(__name__)

DRILL_CHECKS = "drill.checks"  # run the read-only checks of the drill's services
DRILL_REPORT = "drill.report"  # post the drill report in the incident channel
# How long the checks wait for a war room that is being opened; after that (its creation
# failed, say) they run and post where the drill lives now.
WAR_ROOM_WAIT = timedelta(seconds=60)


class Checks(Protocol):
    """The diagnostics service, as drills use it (bot.diagnostics.service)."""

    async def diagnose(
        self,
        service: str,
        actor: Actor,
        *,
        checks: Sequence[str] = (),
        channel_id: str | None = None,
        request_id: str | None = None,
        via: str = "command",
        incident_id: str | None = None,
    ) -> Any: ...


class DrillNotifier(Protocol):
    """How a drill report reaches people (bot.slack.drill_notifier on Slack)."""

    async def post_drill_report(
        self, incident: Incident, report: DrillReport, *, channel: str
    ) -> MessageRef:
        """Post the report in `channel`; NotifierError as the Notifier port says."""
        ...


class Drills:
    """Listens to incident changes for drills and delivers their checks and report."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        policy: Policy,
        changes: IncidentChanges,
        checks: Checks,
        notifier: DrillNotifier | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.policy = policy
        self.changes = changes
        self.checks = checks
        self.notifier = notifier

    def register(self, dispatcher: OutboxDispatcher) -> None:
        dispatcher.register(DRILL_CHECKS, self.run_checks, apart=True)  # checks may hang
        if self.notifier is not None:
            dispatcher.register(DRILL_REPORT, self.post_report)

    # -- the IncidentListener --------------------------------------------------------------

    async def incident_changed(self, tx: Tx, change: IncidentChange) -> None:
        incident = change.after
        if not incident.drill:
            return
        if change.kind == "declared" and self._services(incident):
            # No incident order: the checks run beside the pages, never ahead of them.
            await outbox.enqueue(tx, change.at, DRILL_CHECKS, {"incident_id": incident.id})
            tx.after_commit(self.changes.dispatcher.kick)
        elif change.kind == "resolved":
            await self._record_report(tx, change)

    async def _record_report(self, tx: Tx, change: IncidentChange) -> None:
        incident = change.after
        report = await drill_report.gather(
            tx,
            incident,
            provider_names=PROVIDERS,
            page_providers=self.policy.drills.page_providers,
        )
        acked = (
            f"acknowledged after {round(report.ack_seconds)} s"
            if report.ack_seconds is not None
            else "never acknowledged"
        )
        text = (
            f"Drill report: {len(report.pages)} page(s), {acked}, {len(report.checks)} check run(s)"
        )
        queued = [Queued(DRILL_REPORT, {"report": report.to_json()})] if self.notifier else []
        await self.changes.joining(tx, change.at).record(
            incident.id,
            actor=SYSTEM.user_id,
            kind="drill_report",
            text=text,
            action="drill.report",
            args={"pages": len(report.pages), "checks": len(report.checks)},
            data={"report": report.to_json()},
            effects=queued,
        )

    def _services(self, incident: Incident) -> list[str]:
        return [name for name in incident.services if name.lower() in self.policy.services]

    # -- delivery (outbox handlers) --------------------------------------------------------

    async def _incident(self, incident_id: str) -> Incident | None:
        async with self.store.transaction() as tx:
            return await storage.get(tx, incident_id)

    async def run_checks(self, effect: Effect) -> None:
        """Diagnose the drill's services, on its timeline, the summary in its channel."""
        incident = await self._incident(str(effect.payload.get("incident_id", "")))
        if incident is None or not incident.is_open:
            return  # ended before the checks could run: nothing to practise on
        opening = incident.channel_id is None and self.policy.has_war_room(incident.severity)
        if opening and self.clock.now() - incident.declared_at < WAR_ROOM_WAIT:
            raise NotifierError(
                f"{incident.id}: waiting for the war room", retryable=True, retry_after=1.0
            )
        channel = incident_channel(incident, self.policy)
        for service in self._services(incident):
            try:
                await self.checks.diagnose(
                    service, SYSTEM, channel_id=channel, incident_id=incident.id, via="drill"
                )
            except (NotFound, UsageError) as exc:
                # The catalog changed since the declaration: nothing of it left to check.
                log.warning("%s: no drill checks for %s: %s", incident.id, service, exc)

    async def post_report(self, effect: Effect) -> None:
        incident = await self._incident(effect.incident or "")
        if incident is None or self.notifier is None:
            return
        report = DrillReport.from_json(effect.payload["report"])
        await self.notifier.post_drill_report(
            incident, report, channel=incident_channel(incident, self.policy)
        )
