"""AlertService: recorded alerts become incidents. No Slack here.

The HTTP handler only records (bot.alerts.intake) and kicks this service's worker, which
decides, for each service with undecided alerts, in one transaction (so a change, its record
and its notifications commit together, and however many replicas run, each alert is decided
once):

1. the service's row is locked (`alert_services`): two replicas never open two incidents,
   and the alerts read as `pending` under that lock are decided by this one alone;
2. firing alerts with a severity join the service's open incident (the one alerts opened,
   or one a person declared naming the service), else reopen the incident alerts opened if it
   was resolved within `reopen_within`, else declare one as the bot (war room, roles,
   escalation and paging as if a person had typed it), unless alerts have opened or reopened
   `storm.max_incidents` within `storm.window`: then, reopening or declaring, they are folded
   into the one storm incident (bot.alerts.storm), as are those that would reopen a resolved
   storm incident while another is open; alerts with no severity join an open
   incident if there is one and are only recorded otherwise;
3. timeline lines; one thread message per batch is queued (`alerts.post`, after
   `batch_window`); the first time, a diagnosis (`alerts.diagnose`) (bot.alerts.telling);
4. resolved alerts: a timeline line; when the last one of an incident clears, a line that says
   so, and with `resolve_when_clear` the incident is resolved.

The worker runs when kicked (after a post commits) and every `poll_interval` seconds, so what
a replica recorded and could not decide (it stopped) is decided by another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter

from bot import audit, metrics
from bot.alerts import intake, storage, storm, unsilenced
from bot.alerts.intake import Receipt
from bot.alerts.models import Alert
from bot.alerts.routing import NO_SERVICE
from bot.alerts.storage import StoredAlert
from bot.alerts.telling import AlertTelling
from bot.alerts.wording import declaration, names, plural
from bot.audit import AuditRecord
from bot.durations import humanize_seconds
from bot.errors import StoreBusy, StoreUnavailable
from bot.incidents import storage as incident_storage
from bot.incidents.changes import Change, IncidentChanges
from bot.incidents.service import IncidentService
from bot.models import SYSTEM, Incident, Severity
from bot.policy import Policy
from bot.policy.alerts import AlertsConfig, highest

log = logging.getLogger(__name__)


class AlertService:
    """Records alerts at once and decides them in its worker (see the module docstring)."""

    def __init__(
        self,
        *,
        policy: Policy,
        changes: IncidentChanges,
        incidents: IncidentService,
        poll_interval: float = 2.0,
    ) -> None:
        self.policy = policy
        self.config: AlertsConfig = policy.alerts
        self.changes = changes
        self.incidents = incidents
        self.telling = AlertTelling(policy=policy, changes=changes)
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def receive(self, source: str, alerts: list[Alert], *, left_out: int = 0) -> Receipt:
        """Record `alerts` from `source` (one short transaction) and wake the worker;
        `left_out`: how many more of their group the post did not carry.

        StoreUnavailable/StoreBusy when the store cannot take them: nothing is recorded."""
        receipt = await intake.record(
            self.changes.store,
            self.changes.clock,
            self.config,
            source,
            alerts,
            cut_short=left_out > 0,
        )
        if receipt.resent:  # Alertmanager notifies of no alert its silences hold
            try:
                await unsilenced.notified_while_silenced(self.changes, receipt.resent)
            except (StoreUnavailable, StoreBusy) as exc:  # the alerts are recorded: answer 200
                log.warning("a silence that ended could not be recorded: %s", exc)
        if receipt.outcomes.get("new") or receipt.outcomes.get("resolved") or receipt.superseded:
            self.kick()
        return receipt

    # -- the worker ------------------------------------------------------------------------

    def kick(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.process_pending()
            except asyncio.CancelledError:
                raise
            except Exception:  # the store down: the alerts wait, recorded, for the next turn
                log.exception("deciding recorded alerts failed")

    async def process_pending(self) -> Counter[str]:
        """Decide every recorded alert not yet decided; what was decided, by outcome."""
        decided: Counter[str] = Counter()
        failed: set[str] = set()
        while True:
            async with self.changes.store.snapshot() as tx:
                services = await storage.pending_services(tx, skip=failed)
            if not services:
                return decided
            for service in services:
                try:
                    decided += await self._decide_service(service)
                except (StoreUnavailable, StoreBusy):
                    raise  # nothing decided is lost: the next turn tries again
                except Exception:
                    # One service's trouble never holds up the others; retried next turn.
                    log.exception("deciding the alerts of %s failed", service)
                    failed.add(service)

    async def _decide_service(self, service: str) -> Counter[str]:
        outcomes: Counter[str] = Counter()
        async with self.changes.begin() as change:
            tx, now = change.tx, change.now
            current_id = await storage.lock_service(tx, service, now)
            pending = await storage.pending_firing(tx, service)
            mapped = [a for a in pending if a.severity is not None]
            unmapped = [a for a in pending if a.severity is None]
            incident = None
            if mapped:
                incident, outcome = await self._declare_or_join(change, service, current_id, mapped)
                outcomes[outcome] += len(mapped)
            if unmapped:
                incident = incident or await self._open_incident(change, service, current_id)
                outcomes["attached" if incident else "recorded"] += len(unmapped)
                await self._unmapped(change, service, incident, unmapped)
            # Read after the firing ones are decided: an alert that fired and cleared before
            # the worker came has its incident now.
            resolved = await storage.pending_resolutions(tx, service)
            touched = {a.incident_id for a in resolved if a.incident_id}
            for incident_id in sorted(touched):
                mine = [a for a in resolved if a.incident_id == incident_id]
                await self._resolved(change, service, incident_id, mine)
            outcomes["cleared"] += len(resolved)
            if incident is not None:
                touched.add(incident.id)
            for incident_id in sorted(touched):
                await self.telling.card(change, incident_id)
        for outcome, count in outcomes.items():
            metrics.ALERTS_DECIDED.labels(outcome).inc(count)
        return outcomes

    # -- firing ----------------------------------------------------------------------------

    async def _open_incident(
        self, change: Change, service: str, current_id: str | None
    ) -> Incident | None:
        """The service's open incident: the one alerts opened, or one naming the service.
        Never a drill: a real alert filed under practice would read as practice. A service
        folded into a storm incident goes to an incident naming it declared since, if any."""
        folded_into: Incident | None = None
        if current_id is not None:
            current = await change.lock(current_id)
            if current.is_open and not await storm.is_storm(change.tx, current.id):
                return current
            # Folded into a storm: an incident a person declared since, naming the service,
            # takes its alerts from then on (how one is followed apart from the storm).
            folded_into = current if current.is_open else None
        if service == NO_SERVICE:
            return folded_into
        named = [
            incident
            # A person may have typed the service as "Checkout"; alerts' are lowercased.
            for incident in await incident_storage.open_naming(change.tx, service)
            if folded_into is None or incident.declared_at > folded_into.declared_at
        ]
        if not named:
            return folded_into
        return await change.lock(max(named, key=lambda i: i.declared_at).id)

    async def _declare_or_join(
        self,
        change: Change,
        service: str,
        current_id: str | None,
        items: list[StoredAlert],
    ) -> tuple[Incident, str]:
        tx, now = change.tx, change.now
        ids = [alert.id for alert in items]
        incident = await self._open_incident(change, service, current_id)
        raise_to: Severity | None = None
        said = names(items)
        if incident is not None:
            outcome = "attached"
            line = f"{plural(len(items), 'alert')} joined: {names(items)}"
            raise_to = await self._raised(change, incident, items)
        else:
            previous = await incident_storage.get(tx, current_id) if current_id else None
            window = self.config.reopen_within.as_timedelta()
            refired = (
                previous
                if previous is not None
                and previous.resolved_at is not None
                and now - previous.resolved_at <= window
                else None
            )
            # A reopening pages as a declaration does, so it counts toward the storm cap and
            # past it is folded as one (under the storm lock: once across replicas).
            overflowing = await storm.overflowing(tx, self.config.storm, now)
            # A resolved storm incident firing again while another is open joins that one,
            # never reopened beside it: two storm incidents would page twice for one storm.
            rejoined = (
                not overflowing
                and self.config.storm.max_incidents > 0
                and refired is not None
                and await storm.is_storm(tx, refired.id)
                and await storm.open_storm(tx) is not None
            )
            if overflowing or rejoined:
                outcome = storm.STORMED
                incident, (line, said), declared = await storm.fold(
                    change,
                    self.incidents,
                    self.config.storm,
                    service,
                    items,
                    refired=refired,
                    rejoined=rejoined,
                )
                if refired is not None:
                    await storm.moved(change, refired, incident, items, rejoined=rejoined)
                if not declared:
                    raise_to = await self._raised(change, incident, items)
            elif refired is not None:
                outcome = "reopened"
                incident = await self.incidents.reopen(
                    refired.id,
                    SYSTEM,
                    reason=f"Alert {names(items, 2)} fired again within"
                    f" {humanize_seconds(self.config.reopen_within.seconds)} of the resolution.",
                    within=change,
                )
                await storage.forget_diagnosed(tx, incident.id)
                line = f"{plural(len(items), 'alert')} firing again: {names(items)}"
                raise_to = await self._raised(change, incident, items)
            else:
                outcome = "declared"
                incident = await self.incidents.declare_within(
                    change, declaration(service, items), SYSTEM
                )
                line = f"Opened by {plural(len(items), 'alert')}: {names(items)}"
        await storage.attach(tx, ids, incident.id, outcome)
        await storage.set_service_incident(tx, service, incident.id, now)
        await self.telling.told(change, incident, service, line, outcome, items, said=said)
        if raise_to is not None:
            incident = await self.incidents.change_severity(
                incident.id, SYSTEM, severity=raise_to, within=change
            )
        return incident, outcome

    @staticmethod
    async def _raised(
        change: Change, incident: Incident, items: list[StoredAlert]
    ) -> Severity | None:
        """The higher severity joining alerts call for: a critical alert joining a P3
        pages and opens the war room as it would have declaring one. Never lowered, and
        left alone once a person has set the severity (they judged these alerts)."""
        wanted = highest([item.severity for item in items if item.severity])
        if wanted is None or Severity(wanted).value >= incident.severity.value:
            return None
        rows = await change.tx.fetchall(
            "SELECT actor FROM timeline WHERE incident_id = ? AND kind = 'severity_changed'",
            (incident.id,),
        )
        if any(row["actor"] != SYSTEM.user_id for row in rows):
            return None
        return Severity(wanted)

    async def _unmapped(
        self,
        change: Change,
        service: str,
        incident: Incident | None,
        items: list[StoredAlert],
    ) -> None:
        what = f"{plural(len(items), 'alert')} with no severity mapped: {names(items)}"
        if incident is not None:
            await storage.attach(change.tx, [a.id for a in items], incident.id, "attached")
            await self.telling.told(change, incident, service, what, "attached", items)
            return
        await storage.set_outcome(change.tx, [a.id for a in items], "recorded")
        await audit.append(
            change.tx,
            change.now,
            AuditRecord(
                actor=SYSTEM.user_id,
                action="alerts.recorded",
                target=f"service:{service}",
                outcome="recorded: no severity mapped, no open incident",
                args={"alerts": [item.name for item in items[:20]], "count": len(items)},
            ),
        )

    # -- resolved --------------------------------------------------------------------------

    async def _resolved(
        self, change: Change, service: str, incident_id: str, resolved: list[StoredAlert]
    ) -> None:
        incident = await change.lock(incident_id)
        await storage.ensure_incident(change.tx, incident_id, service)
        await self.telling.queue_post(change, incident_id)
        await change.record(
            incident_id,
            actor=SYSTEM.user_id,
            kind="alerts_resolved",
            text=f"{plural(len(resolved), 'alert')} resolved: {names(resolved)}",
            said=names(resolved),  # a monitor's words: text, never markup
            action="alerts.resolved",
            args={"service": service, "count": len(resolved)},
        )
        if not incident.is_open or await storage.firing_count(change.tx, incident_id) > 0:
            return
        await change.record(
            incident_id,
            actor=SYSTEM.user_id,
            kind="alerts_cleared",
            text="Every alert of this incident has cleared.",
            action="alerts.cleared",
            args={"service": service},
        )
        if self.config.resolve_when_clear:
            await self.incidents.resolve(
                incident_id,
                SYSTEM,
                summary="Every alert cleared (resolve_when_clear).",
                within=change,
            )
