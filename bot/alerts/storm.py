"""Alert storms: one incident for a storm across many services, not one per service.

Once alerts have opened or reopened `storm.max_incidents` incidents within `storm.window`
(counted from the records: incidents the bot declared on alerts, drills never among them, and
the bot's reopenings on the timeline), a service whose alerts would open another, or reopen
its resolved one, is folded into the open storm incident instead, declared by the first such
service. Reopenings count because each pages as a declaration does: a flap re-firing the
200 incidents of a region-wide outage must page once, not 200 times. A folded re-fire is
said on the old incident's timeline (`moved`), where whoever reads it after looks. Each
folded service then points at it (`alert_services`), so its later alerts join it as any
service's join its incident; a person follows one apart by declaring an incident naming it
(AlertService._open_incident then prefers that one).

One storm incident is open at a time as far as alerts go: a resolved storm incident whose
alerts fire again while another is open is not reopened beside it; its services' alerts are
folded into the open one (`rejoined`), said on both timelines. Only a person reopening one
makes two: then each folded service's alerts go to the storm incident it was last folded
into, and new services to the newest declared (`open_storm`), the same answer every time.

The count and the declaration hold one lock shared by every service's decision (PostgreSQL's
advisory lock; SQLite has one writer), so replicas deciding different services at the same
moment never open more than the cap, nor two storm incidents.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import TypeAdapter, ValidationError

from bot.alerts.routing import NO_SERVICE
from bot.alerts.storage import StoredAlert
from bot.alerts.wording import names, plural
from bot.durations import humanize_seconds
from bot.incidents import storage as incident_storage
from bot.incidents.changes import Change, Queued
from bot.incidents.effects import REFRESH
from bot.incidents.schemas import SERVICES_MAX, DeclareIncident, ServiceName
from bot.incidents.service import IncidentService
from bot.models import SYSTEM, Incident, Severity
from bot.policy.alerts import StormConfig, highest
from bot.store import Tx

STORMED = "stormed"  # the outcome of alerts folded into a storm incident
TITLE = "Alert storm: alerts for many services at once"
# The advisory lock's keys (PostgreSQL): "STM" as an int, apart from the other locks'.
_LOCK_CLASS = 0x53544D
_LOCK_KEY = 1
_SERVICE_NAME: TypeAdapter[str] = TypeAdapter(ServiceName)


async def overflowing(tx: Tx, config: StormConfig, now: datetime) -> bool:
    """Whether alerts have opened or reopened `max_incidents` incidents within `window`
    already (a reopening counts each time: each pages).

    Takes the storm lock first (held until the commit): the caller's declaration or
    reopening, ordinary or storm, is then counted by whoever asks next."""
    if not config.max_incidents:
        return False
    if tx.dialect == "postgres":  # SQLite serialises its writers already
        await tx.execute(
            "SELECT pg_advisory_xact_lock(CAST(? AS integer), CAST(? AS integer))",
            (_LOCK_CLASS, _LOCK_KEY),
        )
    since = now - config.window.as_timedelta()
    row = await tx.fetchone(COUNT_SQL, count_params(since))
    return row is not None and int(row["n"]) >= config.max_incidents


# What the cap counts since the window's start. Declarations read the window from the index
# incidents_declared (0026); only alerts reopen as the bot (a person's reopening is theirs),
# and the literal kind lets both databases read the window's reopenings from the partial
# index timeline_reopenings (0024).
COUNT_SQL = (
    "SELECT (SELECT COUNT(*) FROM incidents i WHERE i.declared_by = ? AND i.declared_at >= ?"
    " AND NOT i.drill AND EXISTS (SELECT 1 FROM alerts a WHERE a.incident_id = i.id"
    " AND a.outcome = 'declared'))"
    " + (SELECT COUNT(*) FROM timeline t WHERE t.kind = 'reopened' AND t.at >= ?"
    " AND t.actor = ?) AS n"
)


def count_params(since: datetime) -> tuple[str, float, float, str]:
    return (SYSTEM.user_id, since.timestamp(), since.timestamp(), SYSTEM.user_id)


async def is_storm(tx: Tx, incident_id: str) -> bool:
    row = await tx.fetchone(
        "SELECT storm FROM alert_incidents WHERE incident_id = ?", (incident_id,)
    )
    return row is not None and bool(row["storm"])


async def open_storm(tx: Tx) -> str | None:
    """The open storm incident further services are folded into: the newest declared. Alerts
    never open a second while one is open (a resolved one firing again joins the open one:
    AlertService), but a person may reopen a resolved one: then each folded service's alerts
    still go to the storm incident it was folded into, and new ones to this one."""
    row = await tx.fetchone(
        "SELECT i.id FROM incidents i JOIN alert_incidents s ON s.incident_id = i.id"
        " WHERE s.storm = 1 AND i.status <> 'resolved' ORDER BY i.declared_at DESC, i.id DESC"
        " LIMIT 1"
    )
    return None if row is None else str(row["id"])


async def fold(
    change: Change,
    incidents: IncidentService,
    config: StormConfig,
    service: str,
    items: list[StoredAlert],
    *,
    refired: Incident | None = None,
    rejoined: bool = False,
) -> tuple[Incident, tuple[str, str], bool]:
    """Fold `service`'s alerts into the open storm incident, declaring it when there is none
    (call under the lock `overflowing` took): the incident, its timeline line (and the
    monitor's words ending it), whether it was declared now. `refired`: the resolved
    incident these alerts would have reopened (named on the line); `rejoined`: it is a
    storm incident of its own, and these alerts join the open one below the cap."""
    tx = change.tx
    open_id = await open_storm(tx)
    declared = open_id is None
    if open_id is None:
        incident = await incidents.declare_within(
            change, _declaration(config, service, items), SYSTEM
        )
        await tx.execute(
            "INSERT INTO alert_incidents (incident_id, service, storm) VALUES (?, ?, 1)",
            (incident.id, service),
        )
    else:
        incident = await change.lock(open_id)
        named = _named(incident.services, service)
        if named != incident.services:
            incident = await incident_storage.update(
                tx, incident.evolve(services=named, updated_at=change.now)
            )
            await change.enqueue(incident.id, [Queued(REFRESH, {"kind": "alerts"})])
    found = await tx.fetchone(
        "SELECT COUNT(DISTINCT service) AS n FROM alerts WHERE incident_id = ? AND outcome = ?"
        " AND service <> ?",
        (incident.id, STORMED, service),
    )
    folded = (int(found["n"]) if found else 0) + 1
    return incident, _line(config, service, items, folded, refired, rejoined), declared


async def moved(
    change: Change,
    previous: Incident,
    storm_incident: Incident,
    items: list[StoredAlert],
    *,
    rejoined: bool = False,
) -> None:
    """Say on `previous` (resolved, left so) that its service's alerts fired again and went
    to the storm incident: whoever reads the old incident later (its review, a responder
    who remembers it) learns it came back, and where to follow it. Its timeline only: its
    war room may be archived, and the storm incident's page is the one page."""
    said = names(items)
    why = (
        "another storm incident is open: one storm, one war room, one page"
        if rejoined
        else "alerts had opened or reopened as many incidents as a storm allows"
    )
    await change.record(
        previous.id,
        actor=SYSTEM.user_id,
        kind="alerts_moved",
        text=(
            f"Firing again after the resolution, folded into the storm incident"
            f" {storm_incident.id} instead of reopening this one ({why}): {said}"
        ),
        said=said,
        action="alerts.moved",
        args={"storm_incident": storm_incident.id, "count": len(items)},
    )


def _named(services: tuple[str, ...], service: str) -> tuple[str, ...]:
    """The incident's services with `service` added, while within the incident's limit (the
    timeline still counts those left out) and a name an incident may hold."""
    if service == NO_SERVICE or service in services or len(services) >= SERVICES_MAX:
        return services
    try:
        return (*services, _SERVICE_NAME.validate_python(service))
    except ValidationError:
        return services


def _declaration(config: StormConfig, service: str, items: list[StoredAlert]) -> DeclareIncident:
    severity = highest([item.severity for item in items if item.severity]) or "P3"
    return DeclareIncident(
        severity=Severity(severity),
        title=TITLE,
        impact=(
            f"Alerts opened or reopened {plural(config.max_incidents, 'incident')} within"
            f" {humanize_seconds(config.window.seconds)}; every further service whose alerts"
            " would open or reopen one is folded in here (its alerts listed, one page for all)."
            " To follow a service on its own, declare an incident naming it: its later alerts"
            " go there."
        ),
        services=_named((), service),
    )


def _line(
    config: StormConfig,
    service: str,
    items: list[StoredAlert],
    folded: int,
    refired: Incident | None,
    rejoined: bool,
) -> tuple[str, str]:
    """The timeline line and its end in the monitor's words (the service and alert names)."""
    said = names(items) if service == NO_SERVICE else f"{service}: {names(items)}"
    of = "naming no service" if service == NO_SERVICE else "of service"
    why = (
        f"alerts having opened or reopened {plural(config.max_incidents, 'incident')} within"
        f" {humanize_seconds(config.window.seconds)}"
    )
    if refired is not None:
        of = f"firing again after {refired.id} was resolved, {of}"
        if rejoined:  # below the cap: an earlier storm came back while this one is open
            why = f"{refired.id}, an earlier storm incident, firing again while this one is open"
    line = (
        f"Alert storm: {plural(folded, 'service')} folded in so far, {why}."
        " To follow a service on its own, declare"
        " an incident naming it (`/incident declare` opens the form): its later alerts go"
        f" there. Folded in, {plural(len(items), 'alert')} {of} {said}"
    )
    return line, said
