"""The service container: every port and service, wired in one place.

Nothing here imports Slack: the notifier is handed in, so the console, the tests and
production build the same services around different notifiers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from bot.alerts.delivery import AlertDelivery, AlertNotifier
from bot.alerts.firing import RecordedFiringAlerts
from bot.alerts.service import AlertService
from bot.alerts.silences import SilenceService
from bot.audit import AuditLog
from bot.clock import Clock, SystemClock
from bot.coordination import Coordinator, LocalCoordinator
from bot.dedup import (
    DEFAULT_PRUNE_INTERVAL_SECONDS,
    DEFAULT_RETENTION_SECONDS,
    HandledRequestsPruner,
)
from bot.diagnostics.delivery import DiagnosisDelivery, DiagnosisNotifier
from bot.diagnostics.service import DiagnosticsService
from bot.errors import ConfigError
from bot.escalation.service import EscalationService
from bot.home.publisher import HomePublisher
from bot.home.service import HOME_VIEWER_WINDOW, HomeService
from bot.incidents.catchup_service import CatchupService, FiringAlerts
from bot.incidents.changes import IncidentChanges, IncidentListener
from bot.incidents.drills import DrillNotifier, Drills
from bot.incidents.flows import IncidentFlows
from bot.incidents.pending_pins import PendingPins
from bot.incidents.service import IncidentService
from bot.incidents.standing import StandingIncidents
from bot.notify import Notifier
from bot.outbox import OutboxDispatcher
from bot.paging.ports import PersonDirectory
from bot.paging.service import PagingService
from bot.paging.setup import build_paging
from bot.permissions import CachedDirectory, Directory, Permissions, StaticDirectory
from bot.policy import Policy
from bot.redact import register_secret
from bot.remediation.delivery import RemediationDelivery
from bot.remediation.executors import default_executors
from bot.remediation.expiry import RemediationReminders
from bot.remediation.history import RemediationRecords
from bot.remediation.ports import RemediationNotifier
from bot.remediation.recovery import AutoRecoveryService
from bot.remediation.service import RemediationService
from bot.reminders.engine import ReminderEngine
from bot.reports.chart_pace import REPORT, ChartPace
from bot.reports.postmortems import PostmortemService
from bot.reports.publisher import ReportPublisher
from bot.reports.service import ReportService
from bot.status.page import StatusPage
from bot.status.push import StalePush
from bot.status.service import StatusService
from bot.store import Store, migrate

# On stop, how long running remediations get to finish (deploy/deployment.yaml's grace
# period counts it).
REMEDIATION_STOP_SECONDS = 5.0


class Publisher(ReportPublisher, HomePublisher, Protocol):
    """What the Slack adapter publishes for the reports and the App Home."""


@dataclass
class Services:
    policy: Policy
    store: Store
    coordinator: Coordinator
    clock: Clock
    notifier: Notifier
    audit: AuditLog
    dispatcher: OutboxDispatcher
    incidents: IncidentService
    permissions: Permissions
    reminders: ReminderEngine  # the durable timers: escalation, remediation, follow-ups
    escalation: EscalationService
    reports: ReportService
    postmortems: PostmortemService  # postmortems and action items
    home: HomeService  # the App Home
    diagnostics: DiagnosticsService
    remediation: RemediationService
    pruner: HandledRequestsPruner
    recovery: AutoRecoveryService
    catchup: CatchupService  # `/incident catchup`, and on joining a war room
    standing: StandingIncidents  # where every incident stands (the console's next session)
    remediation_records: RemediationRecords  # runs, approvals waiting, messages to show
    status: StatusService  # publishing to the public status page
    status_page: StatusPage  # its documents, cached in this process
    status_push: StalePush  # withdrawals pushed to (and from) the other replicas
    listeners: list[IncidentListener] = field(default_factory=list)
    paging: PagingService | None = None  # PagerDuty / Opsgenie, when the policy has `paging:`
    pending_pins: PendingPins | None = None  # timeline reactions kept while the store is down
    alerts: AlertService | None = None  # alerts in, when the policy's `alerts:` names a token
    alerts_token: str | None = None  # the monitors' bearer token, read once at start-up
    silences: SilenceService | None = None  # Alertmanager silences from Slack, with alerts

    async def start(self, *, run_dispatcher: bool = True, run_scheduler: bool = True) -> None:
        """Open the store, apply migrations, start delivering the outbox and the reminders
        (and, with the reminders, forgetting handled requests past their retention)."""
        await self.store.open()
        await migrate(self.store)
        self.status_push.start()
        if run_dispatcher:
            self.dispatcher.start()
            if self.alerts is not None:
                self.alerts.start()  # decides recorded alerts (bot.alerts.service)
            if self.pending_pins is not None:
                self.pending_pins.start()
        if run_scheduler:
            await self.reminders.start()
            self.pruner.start()
            self.recovery.start()

    async def close(self) -> None:
        await self.pruner.stop()
        if self.pending_pins is not None:
            await self.pending_pins.stop()
        with contextlib.suppress(TimeoutError):
            # An execution cut short here is closed as "outcome unknown" by its watch.
            await asyncio.wait_for(self.remediation.wait_idle(), timeout=REMEDIATION_STOP_SECONDS)
        await self.recovery.stop()
        if self.alerts is not None:
            await self.alerts.stop()
        await self.reminders.stop()
        await self.dispatcher.stop()
        if self.paging is not None:
            await self.paging.close()
        await self.status_push.stop()
        await self.coordinator.close()
        await self.store.close()


def build_services(
    *,
    policy: Policy,
    store: Store,
    notifier: Notifier,
    coordinator: Coordinator | None = None,
    directory: Directory | None = None,
    clock: Clock | None = None,
    outbox_poll_interval: float = 1.0,
    escalation_sweep_interval: float = 5.0,
    publisher: Publisher | None = None,
    remediation_notifier: RemediationNotifier | None = None,
    dedup_retention: float = DEFAULT_RETENTION_SECONDS,
    dedup_prune_interval: float = DEFAULT_PRUNE_INTERVAL_SECONDS,
    people: PersonDirectory | None = None,
    env: Mapping[str, str] | None = None,
    diagnosis_notifier: DiagnosisNotifier | None = None,
    drill_notifier: DrillNotifier | None = None,
    firing_alerts: FiringAlerts | None = None,
    status_refresh_interval: float = 5.0,
    alert_notifier: AlertNotifier | None = None,
    home_viewer_window: timedelta = HOME_VIEWER_WINDOW,
) -> Services:
    clock = clock or SystemClock()
    permissions = Permissions(policy, CachedDirectory(directory or StaticDirectory()))
    coordinator = coordinator or LocalCoordinator()
    dispatcher = OutboxDispatcher(store, clock, poll_interval=outbox_poll_interval)
    # One path for every incident change; the escalation planner listens to it.
    changes = IncidentChanges(store=store, clock=clock, dispatcher=dispatcher)
    # The durable timers; escalation, follow-ups and remediation register their kinds.
    engine = ReminderEngine(
        store=store, clock=clock, changes=changes, sweep_interval=escalation_sweep_interval
    )
    escalation = EscalationService(
        store=store,
        policy=policy,
        notifier=notifier,
        permissions=permissions,
        changes=changes,
        engine=engine,
    )
    escalation.register(dispatcher)
    changes.listeners.append(escalation.planning)
    # The report's remediation section, the App Home's approvals waiting and the console's
    # next session read these.
    records = RemediationRecords(store=store, clock=clock, policy=policy, permissions=permissions)
    home = HomeService(
        store=store,
        clock=clock,
        dispatcher=dispatcher,
        publisher=publisher,
        approvals=records,
        viewer_window=home_viewer_window,
    )
    home.register(dispatcher)
    reports = ReportService(
        store=store,
        clock=clock,
        policy=policy,
        dispatcher=dispatcher,
        publisher=publisher,
        remediations=records,
        chart_pace=ChartPace(coordinator, clock),
        report_pace=ChartPace(coordinator, clock, paced=REPORT),
    )
    reports.register(dispatcher, engine)
    changes.listeners.append(reports)  # targets and the search index
    changes.listeners.append(home)  # App Home refreshes
    postmortems = PostmortemService(store=store, clock=clock, permissions=permissions, home=home)
    incidents = IncidentService(
        store=store,
        clock=clock,
        policy=policy,
        changes=changes,
        permissions=permissions,
        notifier=notifier,
    )
    IncidentFlows(
        store=store, clock=clock, policy=policy, notifier=notifier, permissions=permissions
    ).register(dispatcher)
    remediation = RemediationService(
        policy=policy,
        store=store,
        clock=clock,
        permissions=permissions,
        dispatcher=dispatcher,
        executors=default_executors(),
        expiry=policy.remediation.expire_after.as_timedelta(),
        timeout=policy.remediation.timeout.seconds,
        watch_grace=policy.remediation.watch_grace.seconds,
    )
    RemediationReminders(service=remediation).register(engine)
    remediation.changes.listeners.append(home)  # approvals waiting on the App Home
    # PagerDuty / Opsgenie: after the escalation planner among the listeners, so a reopening
    # that pages level 1 again is seen as paged already.
    paging = build_paging(
        policy=policy,
        store=store,
        clock=clock,
        changes=changes,
        incidents=incidents,
        people=people,
        env=os.environ if env is None else env,
    )
    if paging is not None:
        paging.register(dispatcher)
        changes.listeners.append(paging)
        escalation.add_provider_pages(paging, paging.oncall)
        paging.refused_pages = escalation.delivery.unreached
    if remediation_notifier is not None:
        RemediationDelivery(service=remediation, notifier=remediation_notifier).register(dispatcher)
    if diagnosis_notifier is not None:
        DiagnosisDelivery(store=store, clock=clock, notifier=diagnosis_notifier).register(
            dispatcher
        )
    diagnostics = DiagnosticsService(
        policy=policy,
        store=store,
        clock=clock,
        permissions=permissions,
        dispatcher=dispatcher,
        notifier=diagnosis_notifier,
        coordinator=coordinator,
    )
    # Drills: their checks on declaration, their report on resolution.
    drills = Drills(
        store=store,
        clock=clock,
        policy=policy,
        changes=changes,
        checks=diagnostics,
        notifier=drill_notifier,
    )
    drills.register(dispatcher)
    changes.listeners.append(drills)
    alerts = silences = None
    alerts_token = alerts_token_from(policy, os.environ if env is None else env)
    if policy.alerts.enabled:
        alerts = AlertService(policy=policy, changes=changes, incidents=incidents)
        silences = SilenceService(
            config=policy.alerts, changes=changes, permissions=permissions, coordinator=coordinator
        )
        if alert_notifier is not None:
            AlertDelivery(
                store=store,
                clock=clock,
                policy=policy,
                notifier=alert_notifier,
                diagnostics=diagnostics,
            ).register(dispatcher)
    recovery = AutoRecoveryService(
        policy=policy,
        store=store,
        clock=clock,
        incidents=incidents,
        escalation=escalation,
        executor=remediation.executors["kubernetes"],
        owner=engine.owner,
        restart_timeout=policy.remediation.timeout.seconds,
        poll_interval=escalation_sweep_interval,
    )
    status_page = StatusPage(
        store=store,
        clock=clock,
        components=policy.status_components(),
        refresh_every=status_refresh_interval,
    )
    status_push = StalePush(coordinator, status_page)
    status = StatusService(
        changes=changes, permissions=permissions, page=status_page, push=status_push
    )
    changes.listeners.append(status)  # the status page's version, and updates published
    audit = AuditLog(store, clock)
    return Services(
        policy=policy,
        store=store,
        coordinator=coordinator,
        clock=clock,
        notifier=notifier,
        audit=audit,
        dispatcher=dispatcher,
        incidents=incidents,
        permissions=permissions,
        reminders=engine,
        escalation=escalation,
        reports=reports,
        postmortems=postmortems,
        home=home,
        diagnostics=diagnostics,
        remediation=remediation,
        pruner=HandledRequestsPruner(
            store, clock, retention=dedup_retention, interval=dedup_prune_interval
        ),
        recovery=recovery,
        status=status,
        status_page=status_page,
        status_push=status_push,
        listeners=changes.listeners,
        catchup=CatchupService(
            store=store, clock=clock, alerts=firing_alerts or RecordedFiringAlerts()
        ),
        standing=StandingIncidents(store=store, policy=policy),
        remediation_records=records,
        paging=paging,
        pending_pins=PendingPins(coordinator=coordinator, incidents=incidents, audit=audit),
        alerts=alerts,
        alerts_token=alerts_token,
        silences=silences,
    )


def alerts_token_from(policy: Policy, env: Mapping[str, str]) -> str | None:
    """The monitors' bearer token named by `alerts.token_env` (None: no alerts in).

    Unset or blank, it stops start-up with ConfigError naming it, as paging's secrets do:
    otherwise the bot started and refused every alert with 503. Trimmed, as a Secret made
    from a file (`echo token > f`) ends in a newline; registered for redaction."""
    name = policy.alerts.token_env
    if name is None:
        return None
    token = (env.get(name) or "").strip()
    if not token:
        raise ConfigError(f"{name} is not set (named by the policy's alerts.token_env)")
    register_secret(token)
    return token
