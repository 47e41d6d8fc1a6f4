"""AlertService: alerts in, incidents out. No Slack here.

For each service the alerts of one post name, in one transaction (so a change, its record
and its notifications commit together, and a resend or a retry on any replica changes nothing
twice):

1. the service's row is locked (`alert_services`): two replicas never open two incidents;
2. each alert is inserted unless (fingerprint, starts_at) is recorded already; a resolved one
   marks its firing record resolved;
3. new firing alerts with a severity join the service's open incident (the one alerts opened,
   or one a person declared naming the service), else reopen the incident alerts opened if it
   was resolved within `reopen_within`, else declare one as the bot (war room, roles,
   escalation and paging as if a person had typed it); alerts with no severity join an open
   incident if there is one and are only recorded otherwise;
4. timeline lines; one thread message per batch is queued (`alerts.post`, after
   `batch_window`); the first time, a diagnosis (`alerts.diagnose`);
5. resolved alerts: a timeline line; when the last one of an incident clears, a line that says
   so, and with `resolve_when_clear` the incident is resolved.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from bot import audit, metrics, outbox
from bot.alerts import storage
from bot.alerts.config import AlertsConfig, highest
from bot.alerts.models import FIRING, RESOLVED, Alert
from bot.alerts.routing import NO_SERVICE, Routed, by_service, route
from bot.alerts.storage import StoredAlert
from bot.audit import AuditRecord
from bot.durations import humanize_seconds
from bot.incidents import storage as incident_storage
from bot.incidents.changes import Change, IncidentChanges, Queued
from bot.incidents.effects import REFRESH
from bot.incidents.schemas import IMPACT_MAX, TITLE_MAX, DeclareIncident
from bot.incidents.service import IncidentService
from bot.models import SYSTEM, Incident, Severity
from bot.policy import Policy

log = logging.getLogger(__name__)

# The card's Current Status shows the alerts' count while no person has written one.
CARD_PREFIX = "Alerts: "
POST = "alerts.post"  # one thread message telling a batch of alerts
DIAGNOSE = "alerts.diagnose"  # run /diagnose for the service, post it in the war room


@dataclass
class Receipt:
    """What one post did, by outcome: declared, attached, reopened, recorded (no severity,
    no incident), ignored (a route said so), resolved, duplicate."""

    outcomes: Counter[str] = field(default_factory=Counter)
    incidents: set[str] = field(default_factory=set)

    def as_json(self) -> dict[str, object]:
        return {"outcomes": dict(self.outcomes), "incidents": sorted(self.incidents)}


def names(alerts: list[StoredAlert] | list[Routed], limit: int = 5) -> str:
    """`A, B and 3 more` of the distinct alert names."""
    seen: list[str] = []
    for item in alerts:
        name = item.alert.name if isinstance(item, Routed) else item.name
        if name not in seen:
            seen.append(name)
    shown = ", ".join(seen[:limit])
    return shown + (f" and {len(seen) - limit} more" if len(seen) > limit else "")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


class AlertService:
    """Records alerts and opens, joins, reopens and clears incidents from them."""

    def __init__(
        self,
        *,
        policy: Policy,
        changes: IncidentChanges,
        incidents: IncidentService,
    ) -> None:
        self.policy = policy
        self.config: AlertsConfig = policy.alerts
        self.changes = changes
        self.incidents = incidents

    async def receive(self, source: str, alerts: list[Alert]) -> Receipt:
        """Record `alerts` (from `source`) and act on them; see the module docstring.

        Raises StoreUnavailable/StoreBusy when the store cannot take them (nothing recorded
        for the services not yet done; the sender delivers again and the rest is a no-op)."""
        receipt = Receipt()
        routed = [route(alert, self.config) for alert in alerts]
        for service, items in by_service(routed).items():
            if await self._all_known(items):
                # A resend (repeat_interval, a retry, the other replica): read, no lock taken.
                receipt.outcomes["duplicate"] += len(items)
                continue
            await self._receive_service(service, items, receipt)
        for outcome, count in receipt.outcomes.items():
            metrics.ALERTS_RECEIVED.labels(source, outcome).inc(count)
        return receipt

    async def _all_known(self, items: list[Routed]) -> bool:
        """Every one of `items` is recorded already in the state it is sent in."""
        async with self.changes.store.snapshot() as tx:
            known = await storage.known(tx, [item.alert for item in items])
        return all(
            known.get((i.alert.fingerprint, i.alert.starts_key)) in (i.alert.status, RESOLVED)
            for i in items
        )

    async def _receive_service(self, service: str, items: list[Routed], receipt: Receipt) -> None:
        async with self.changes.begin() as change:
            tx, now = change.tx, change.now
            current_id = await storage.lock_service(tx, service, now)
            new_firing: list[tuple[int, Routed]] = []
            unmapped: list[tuple[int, Routed]] = []
            resolved: list[StoredAlert] = []
            outcomes: Counter[str] = Counter()
            known = await storage.known(tx, [item.alert for item in items])
            firing: dict[tuple[str, str], Routed] = {}
            for item in items:
                key = (item.alert.fingerprint, item.alert.starts_key)
                seen = known.get(key)
                if (seen is not None and seen in (item.alert.status, RESOLVED)) or key in firing:
                    outcomes["duplicate"] += 1  # a resend: nothing to do
                elif item.alert.status == FIRING:
                    firing[key] = item
                else:
                    stored = await storage.resolve(tx, item.alert, now)
                    if stored is not None:
                        resolved.append(stored)
                        outcomes["resolved"] += 1
                    elif await storage.insert_many(tx, [(item, "recorded")], now):
                        outcomes["recorded"] += 1  # resolved before it was ever seen firing
                    else:
                        outcomes["duplicate"] += 1
            batch = [(i, "ignored" if i.ignored else "pending") for i in firing.values()]
            inserted = await storage.insert_many(tx, batch, now)
            for key, item in firing.items():
                alert_id = inserted.get(key)
                if alert_id is None:
                    outcomes["duplicate"] += 1  # another replica recorded it meanwhile
                elif item.ignored:
                    outcomes["ignored"] += 1
                elif item.severity is None:
                    unmapped.append((alert_id, item))
                else:
                    new_firing.append((alert_id, item))
            incident = None
            if new_firing:
                incident, outcome = await self._declare_or_join(
                    change, service, current_id, new_firing
                )
                outcomes[outcome] += len(new_firing)
            if unmapped:
                incident = incident or await self._open_incident(change, service, current_id)
                outcomes["attached" if incident else "recorded"] += len(unmapped)
                await self._unmapped(change, service, incident, unmapped)
            for incident_id in sorted({a.incident_id for a in resolved if a.incident_id}):
                mine = [a for a in resolved if a.incident_id == incident_id]
                await self._resolved(change, service, incident_id, mine)
            touched = {a.incident_id for a in resolved if a.incident_id}
            if incident is not None:
                touched.add(incident.id)
                receipt.incidents.add(incident.id)
            for incident_id in sorted(touched):
                await self._card(change, incident_id)
            receipt.outcomes.update(outcomes)

    # -- firing ----------------------------------------------------------------------------

    async def _open_incident(
        self, change: Change, service: str, current_id: str | None
    ) -> Incident | None:
        """The service's open incident: the one alerts opened, or one naming the service."""
        if current_id is not None:
            current = await change.lock(current_id)
            if current.is_open:
                return current
        if service == NO_SERVICE:
            return None
        named = [
            incident
            for incident in await incident_storage.list_incidents(change.tx, limit=200)
            if service in incident.services
        ]
        if not named:
            return None
        return await change.lock(max(named, key=lambda i: i.declared_at).id)

    async def _declare_or_join(
        self,
        change: Change,
        service: str,
        current_id: str | None,
        new_firing: list[tuple[int, Routed]],
    ) -> tuple[Incident, str]:
        tx, now = change.tx, change.now
        items = [item for _, item in new_firing]
        ids = [alert_id for alert_id, _ in new_firing]
        incident = await self._open_incident(change, service, current_id)
        if incident is not None:
            outcome = "attached"
            line = f"{_plural(len(items), 'alert')} joined: {names(items)}"
        else:
            previous = await incident_storage.get(tx, current_id) if current_id else None
            window = self.config.reopen_within.as_timedelta()
            if (
                previous is not None
                and previous.resolved_at is not None
                and now - previous.resolved_at <= window
            ):
                outcome = "reopened"
                incident = await self.incidents.reopen(
                    previous.id,
                    SYSTEM,
                    reason=f"Alert {names(items, 2)} fired again within"
                    f" {_window(self.config.reopen_within.seconds)} of the resolution.",
                    within=change,
                )
                await storage.forget_diagnosed(tx, incident.id)
                line = f"{_plural(len(items), 'alert')} firing again: {names(items)}"
            else:
                outcome = "declared"
                incident = await self.incidents.declare_within(
                    change, self._declaration(service, items), SYSTEM
                )
                line = f"Opened by {_plural(len(items), 'alert')}: {names(items)}"
        await storage.attach(tx, ids, incident.id, outcome)
        await storage.set_service_incident(tx, service, incident.id, now)
        await self._told(change, incident, service, line, outcome, items)
        return incident, outcome

    def _declaration(self, service: str, items: list[Routed]) -> DeclareIncident:
        first = items[0].alert
        headline = first.summary or first.name
        if len({item.alert.name for item in items}) > 1:
            headline += f" (+{len(items) - 1} more alerts)"
        title = headline if service == NO_SERVICE else f"{service}: {headline}"
        severity = highest([item.severity for item in items if item.severity]) or "P3"
        description = first.annotations.get("description", "")
        impact = description or f"{_plural(len(items), 'alert')} firing: {names(items)}"
        return DeclareIncident(
            severity=Severity(severity),
            title=_one_line(title)[:TITLE_MAX],
            impact=_one_line(impact)[:IMPACT_MAX],
            # A service the catalog does not name is still the incident's service.
            services=(service,) if service != NO_SERVICE else (),
        )

    async def _unmapped(
        self,
        change: Change,
        service: str,
        incident: Incident | None,
        unmapped: list[tuple[int, Routed]],
    ) -> None:
        items = [item for _, item in unmapped]
        what = f"{_plural(len(items), 'alert')} with no severity mapped: {names(items)}"
        if incident is not None:
            await storage.attach(change.tx, [i for i, _ in unmapped], incident.id, "attached")
            await self._told(change, incident, service, what, "attached", items)
            return
        await audit.append(
            change.tx,
            change.now,
            AuditRecord(
                actor=SYSTEM.user_id,
                action="alerts.recorded",
                target=f"service:{service}",
                outcome="recorded: no severity mapped, no open incident",
                args={"alerts": [item.alert.name for item in items[:20]], "count": len(items)},
            ),
        )

    async def _told(
        self,
        change: Change,
        incident: Incident,
        service: str,
        line: str,
        outcome: str,
        items: list[Routed],
    ) -> None:
        """The timeline line, the batch's thread message, the diagnosis the first time."""
        tx = change.tx
        await storage.ensure_incident(tx, incident.id, service)
        effects: list[Queued] = []
        if (
            self.config.auto_diagnose
            and service in self.policy.services
            and await storage.mark_diagnosed(tx, incident.id, change.now)
        ):
            effects.append(Queued(DIAGNOSE, {"service": service}))
        await change.record(
            incident.id,
            actor=SYSTEM.user_id,
            kind=f"alerts_{outcome}",
            text=line,
            action=f"alerts.{outcome}",
            args={
                "service": service,
                "count": len(items),
                "alerts": [
                    {"name": i.alert.name, "fingerprint": i.alert.fingerprint} for i in items[:20]
                ],
            },
            effects=effects,
        )
        # After the diagnosis: its summary is the first thing in the war room, then the list.
        await self._queue_post(change, incident.id)

    async def _queue_post(self, change: Change, incident_id: str) -> None:
        batch = await storage.queue_post(change.tx, incident_id)
        if batch is None:
            return  # a message is queued already: it will tell these too
        # The batch waits `batch_window`, so one message tells every alert that came meanwhile.
        await outbox.enqueue(
            change.tx,
            change.now,
            POST,
            {"batch": batch},
            incident_id=incident_id,
            delay=self.config.batch_window.seconds,
        )
        change.tx.after_commit(self.changes.dispatcher.kick)

    async def _card(self, change: Change, incident_id: str) -> None:
        """The alerts' count on the card (its Current Status, unless a person wrote one)."""
        incident = await change.lock(incident_id)
        if incident.current_status and not incident.current_status.startswith(CARD_PREFIX):
            return
        firing, resolved = await storage.counts(change.tx, incident_id)
        if firing == 0 and resolved and incident.is_open:
            status = f"{CARD_PREFIX}every alert has cleared ({resolved} resolved); resolve it"
            status += " when you are satisfied." if not self.config.resolve_when_clear else "."
        else:
            status = f"{CARD_PREFIX}{firing} firing, {resolved} resolved."
        if status == incident.current_status:
            return
        await incident_storage.update(
            change.tx, incident.evolve(current_status=status, updated_at=change.now)
        )
        await change.enqueue(incident_id, [Queued(REFRESH, {"kind": "alerts"})])

    # -- resolved --------------------------------------------------------------------------

    async def _resolved(
        self, change: Change, service: str, incident_id: str, resolved: list[StoredAlert]
    ) -> None:
        incident = await change.lock(incident_id)
        await storage.ensure_incident(change.tx, incident_id, service)
        await self._queue_post(change, incident_id)
        await change.record(
            incident_id,
            actor=SYSTEM.user_id,
            kind="alerts_resolved",
            text=f"{_plural(len(resolved), 'alert')} resolved: {names(resolved)}",
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


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _window(seconds: float) -> str:
    return humanize_seconds(seconds)
