"""DiagnosticsService: run the catalog's read-only checks for one service, record the run."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bot import audit, dedup, metrics, outbox, refs
from bot.audit import AuditRecord
from bot.catalog import NO_SERVICES, Service
from bot.clock import Clock
from bot.coordination.base import Coordinator
from bot.diagnostics import delivery
from bot.diagnostics.advisor import advise, describe
from bot.diagnostics.findings import Check, Report, report_to_json
from bot.diagnostics.plan import Clients, all_checks, select
from bot.diagnostics.runner import run_checks
from bot.diagnostics.runs import (
    HOLD_MARGIN,
    DiagnosisRunning,
    RunningDiagnosis,
    SharedHolds,
    run_key,
)
from bot.errors import (
    NotFound,
    NotifierError,
    PermissionDenied,
    StoreBusy,
    StoreUnavailable,
    UsageError,
)
from bot.incidents import journal, storage
from bot.models import Actor, Incident
from bot.outbox import OutboxDispatcher
from bot.permissions import Permissions
from bot.policy import Policy
from bot.store import Store, Tx
from bot.targets.http import HttpClient

log = logging.getLogger(__name__)


def _echo(text: str) -> str:
    """A name the user typed, made safe to repeat back (letters, digits, '-', '_', '.')."""
    return re.sub(r"[^\w.-]", "", text)[:40] or "?"


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """A finished run: the report, the incident whose timeline it joined (if any), and whether
    the store took the record (it may be down; the report is still worth showing). When it
    was recorded with a channel, its summary is queued in the outbox with the record."""

    report: Report
    incident_id: str | None
    recorded: bool = True
    # Why the summary could not be posted at once (a Slack error code), when the store did
    # not take the record and the diagnosis notifier posted it instead.
    post_error: str | None = None


class DiagnosticsService:
    """`/diagnose <service> [check ...]` without Slack: validate, run, advise, record."""

    def __init__(
        self,
        *,
        policy: Policy,
        store: Store,
        clock: Clock,
        permissions: Permissions,
        http_client: HttpClient | None = None,
        dispatcher: OutboxDispatcher | None = None,
        notifier: delivery.DiagnosisNotifier | None = None,
        coordinator: Coordinator | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.coordinator = coordinator
        self.notifier = notifier
        self.policy = policy
        self.store = store
        self.clock = clock
        self.permissions = permissions
        self.http_client = http_client or HttpClient()
        # Runs under way, by service and checks: a double click or twenty responders at once
        # share one run instead of hitting an overloaded system twenty times. This table is
        # the fast path of this process; the coordinator's hold shares the run with the other
        # replicas (with Redis). Both are freed in a `finally`.
        self._running: dict[tuple[str, tuple[str, ...]], RunningDiagnosis] = {}
        self._holds = SharedHolds(coordinator)

    def running(self, service: str, checks: Sequence[str] = ()) -> RunningDiagnosis | None:
        """The run of this service and checks under way in this process, if any."""
        return self._running.get(run_key(service, checks))

    def service_names(self) -> list[str]:
        return sorted(self.policy.services)

    def entry(self, service: str) -> Service:
        """The catalog entry; NotFound naming the services there are."""
        found = self.policy.services.get(service.lower())
        if found is None:
            names = ", ".join(self.service_names()) or NO_SERVICES
            raise NotFound(
                f"No service called '{_echo(service)}' in the catalog. Services: {names}."
            )
        return found

    def plan(self, service: str, wanted: Sequence[str] = ()) -> list[Check]:
        """The checks a run would do (UsageError for unknown check names)."""
        name = service.lower()
        return select(
            all_checks(self.entry(name), Clients(), self.http_client, service=name), wanted
        )

    async def require_diagnoser(self, actor: Actor) -> None:
        if not actor.is_system and not await self.permissions.allows(actor, "responders"):
            raise PermissionDenied("Only responders may run diagnostics.")

    async def check(self, service: str, actor: Actor, checks: Sequence[str] = ()) -> None:
        """Everything `diagnose` would refuse, without running anything: PermissionDenied,
        NotFound or UsageError. A listener calls it before saying that a run has started."""
        await self.require_diagnoser(actor)
        if not self.plan(service, checks):
            raise UsageError(f"The catalog names nothing to check for '{_echo(service)}'.")

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
        on_start: Callable[[str, tuple[str, ...]], Awaitable[None]] | None = None,
    ) -> Diagnosis:
        """Run every selected check concurrently, each within its timeout; advise; record.

        Raises PermissionDenied (not a responder), NotFound (not in the catalog), UsageError
        (an unknown check). Unreachable or hung targets are CRIT findings, not errors. The run
        and its grades are audited, and put on the incident's timeline when `channel_id` is
        an incident's war room, or `incident_id` names one (a drill's own checks, the bot's
        own runs for an incident without a war room). A drill's report suggests no
        remediation that writes, only advice done by hand.

        A person's run of a service and checks already running in this process, or (with
        Redis) on another replica, raises DiagnosisRunning (who started it, when, where it
        goes) and runs nothing; the bot's own runs (alerts, drills) belong to their incident's
        timeline and run all the same. Redis down: the run goes ahead, shared in this process
        only. `on_start` is awaited once the run is this caller's, before any check runs, with the
        service and checks as the catalog names them (lowercase, each check once).
        """
        await self.check(service, actor, checks)
        named = key = run_key(service, checks)
        if key[1] and len(self.plan(*key)) == len(self.plan(key[0])):
            key = (key[0], ())  # every check named: the same run as naming none
        under_way = self._running.get(key)
        if under_way is not None and not actor.is_system:
            raise DiagnosisRunning(under_way)
        if under_way is None:  # no await since the look-up: nobody else took it meanwhile
            self._running[key] = RunningDiagnosis(
                key[0], key[1], actor.user_id, self.clock.now(), channel_id
            )
        held: str | None = None
        try:
            if under_way is None:
                # The run can take as long as its slowest check: the hold outlives that.
                slowest = max((c.timeout for c in self.plan(key[0], key[1])), default=0.0)
                held = await self._holds.take(
                    key, self._running[key], slowest + HOLD_MARGIN, refuse=not actor.is_system
                )
            if on_start is not None:
                await on_start(*named)
            return await self._diagnose(
                service, actor, checks, channel_id, request_id, via, incident_id
            )
        finally:
            try:
                if held is not None:
                    await self._holds.release(key, held)
            finally:
                if under_way is None:  # freed at once, however the run ended (crash, timeout)
                    del self._running[key]

    async def _diagnose(
        self,
        service: str,
        actor: Actor,
        checks: Sequence[str],
        channel_id: str | None,
        request_id: str | None,
        via: str,
        incident_id: str | None,
    ) -> Diagnosis:
        name = service.lower()
        clients = Clients()
        entry = self.entry(name)
        selected = select(all_checks(entry, clients, self.http_client, service=name), checks)
        started_at = self.clock.now()
        started = time.perf_counter()
        try:
            runs = await run_checks(selected)
        finally:
            await clients.close()
        report = Report(
            service=name,
            started_at=started_at,
            seconds=time.perf_counter() - started,
            runs=tuple(runs),
        )
        drill = await self._in_drill(channel_id, incident_id)
        report = _with_suggestions(report, entry, writes=not drill)
        try:
            incident_id = await self._record(
                report, actor, checks, channel_id, request_id, via, incident_id
            )
        except (StoreUnavailable, StoreBusy) as exc:
            log.warning("diagnosis of %s not recorded: %s", name, exc)
            error = await self._post_unrecorded(report, channel_id, actor, incident_id)
            return Diagnosis(report, None, recorded=False, post_error=error)
        return Diagnosis(report, incident_id)

    async def _post_unrecorded(
        self, report: Report, channel_id: str | None, actor: Actor, incident_id: str | None
    ) -> str | None:
        """The outbox could not take the summary: post it now, through the same notifier
        (and its error translation) the outbox uses. The Slack error code when it failed."""
        if not channel_id or self.notifier is None:
            return None
        try:
            await delivery.post_now(
                self.notifier,
                report,
                channel=channel_id,
                actor=actor.user_id,
                incident_id=incident_id,
            )
        except NotifierError as exc:
            log.warning("could not post the diagnosis of %s: %s", report.service, exc)
            return exc.error_code or str(exc)
        return None

    def describe_suggestion(self, service: str, action: str, params: dict[str, Any]) -> str:
        """What a suggestion would do, from the catalog; NotFound when it no longer applies."""
        text = describe(service.lower(), self.entry(service), action, params)
        if text is None:
            raise NotFound("That suggestion no longer matches the service catalog.")
        return text

    async def _in_drill(self, channel_id: str | None, incident_id: str | None) -> bool:
        """Whether the run is for a drill; a store that cannot say counts as no drill (the
        remediation service refuses a drill's requests all the same)."""
        if not channel_id and not incident_id:
            return False
        try:
            async with self.store.transaction() as tx:
                incident = await self._incident(tx, channel_id, incident_id)
        except (StoreUnavailable, StoreBusy):
            return False
        return incident is not None and incident.drill

    @staticmethod
    async def _incident(tx: Tx, channel_id: str | None, incident_id: str | None) -> Incident | None:
        if incident_id:
            return await storage.get(tx, incident_id)
        return await storage.get_by_channel(tx, channel_id) if channel_id else None

    async def _record(
        self,
        report: Report,
        actor: Actor,
        checks: Sequence[str],
        channel_id: str | None,
        request_id: str | None,
        via: str,
        incident_id: str | None = None,
    ) -> str | None:
        metrics.DIAGNOSES.labels(report.grade.name).inc()
        args = {
            "service": report.service,
            "checks": [_echo(c) for c in checks],
            "via": via,
            "grade": report.grade.name,
            "grades": report.grades(),
            "suggestions": [s.action for s in report.suggestions],
            "seconds": round(report.seconds, 3),
        }
        now = self.clock.now()
        async with self.store.transaction() as tx:
            # Claimed with the record (a button's run of several services claims it once):
            # read back when a failure after the commit must be told from one before it.
            await dedup.mark_handled(tx, request_id, now)
            incident = await self._incident(tx, channel_id, incident_id)
            if channel_id:
                # The summary goes out through the outbox, once this record commits.
                await outbox.enqueue(
                    tx,
                    now,
                    delivery.SUMMARY,
                    {
                        "report": report_to_json(report),
                        "channel": channel_id,
                        "actor": actor.user_id,
                        # Its suggestion buttons name it: their requests are the incident's.
                        "incident": incident.id if incident is not None else None,
                    },
                    lane=incident.id if incident is not None else None,
                )
                if self.dispatcher is not None:
                    tx.after_commit(self.dispatcher.kick)
            if incident is not None:
                worst = [c for c, g in report.grades().items() if g != "OK"]
                text = refs.text(
                    f"Diagnosis of {report.service} by ",
                    refs.Person(actor.user_id),
                    f": {report.grade.name}",
                    f" ({', '.join(worst[:6])})" if worst else " (all checks OK)",
                )
                await journal.record(
                    tx,
                    now,
                    incident.id,
                    actor=actor.user_id,
                    kind="diagnosed",
                    text=text,
                    action="diagnose.run",
                    args=args,
                    outcome=f"ok: {report.grade.name}",
                    data=args,
                    request_id=request_id,
                )
                return incident.id
            await audit.append(
                tx,
                now,
                AuditRecord(
                    actor=actor.user_id,
                    action="diagnose.run",
                    target=f"service:{report.service}",
                    outcome=f"ok: {report.grade.name}",
                    args=args,
                    request_id=request_id,
                ),
            )
        return None


def _with_suggestions(report: Report, entry: Service, *, writes: bool = True) -> Report:
    """The runbook's suggestions; with `writes` off (a drill) only advice done by hand."""
    suggestions = tuple(
        s for s in advise(report.service, entry, report.findings) if writes or s.advice
    )
    return Report(report.service, report.started_at, report.seconds, report.runs, suggestions)
