"""ReportService: the post-incident report, postmortems and action items, statistics, the
App Home's facts and similar past incidents. Plain async Python; Slack only via ports.

It is also an IncidentListener: in the transaction of every incident change it records the
targets the incident is held to, rewrites its search document and queues App Home refreshes;
and a RemediationListener, queueing them for every change of a remediation request.
Uploads, reminders and home views go through the outbox, so a Slack outage loses nothing.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from datetime import datetime

from bot import audit, dedup, outbox
from bot.audit import AuditRecord
from bot.clock import Clock
from bot.errors import NotFound, PermissionDenied, UsageError
from bot.escalation.calendar import due_after, working_periods
from bot.escalation.planner import ReminderKind
from bot.escalation.service import EscalationService
from bot.incidents import journal
from bot.incidents import storage as incidents
from bot.incidents.service import IncidentChange
from bot.models import Actor, Incident, Severity
from bot.outbox import OutboxDispatcher
from bot.permissions import Permissions
from bot.policy import Policy
from bot.reports import followups, markdown, search, stats, storage
from bot.reports.followups import ActionItemReminders
from bot.reports.forms import PostmortemInput
from bot.reports.models import (
    ActionItem,
    ApprovalsWaiting,
    HomeFacts,
    Postmortem,
    RemediationHistory,
    ReportFacts,
    SimilarIncident,
    Stats,
)
from bot.reports.publisher import ReportPublisher
from bot.store import Store, Tx

log = logging.getLogger(__name__)

UPLOAD_REPORT = "reports.upload_report"
UPLOAD_STATS = "reports.upload_stats"
HOME = "reports.home"
HOME_SHOWN = 15  # open incidents listed one by one on the App Home (the rest are counted)
HOME_ITEMS = 10
MAX_STATS_DAYS = 366
_TARGET_CHANGES = {"declared", "severity_changed", "reopened"}


def working_seconds(start: datetime, end: datetime, policy: Policy) -> float:
    """Working time between two instants on the policy's calendar."""
    total = 0.0
    if end <= start:
        return total
    for opens, closes in working_periods(start, policy.calendar):
        if opens >= end:
            break
        total += max(0.0, (min(closes, end) - max(opens, start)).total_seconds())
    return total


class ReportService:
    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        policy: Policy,
        dispatcher: OutboxDispatcher,
        permissions: Permissions,
        publisher: ReportPublisher | None = None,
        remediations: RemediationHistory | None = None,
        approvals: ApprovalsWaiting | None = None,
        home_debounce: float = 2.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.policy = policy
        self.dispatcher = dispatcher
        self.permissions = permissions
        self.publisher = publisher
        self.remediations = remediations
        self.approvals = approvals
        self.home_debounce = home_debounce

    def register(self, dispatcher: OutboxDispatcher, escalation: EscalationService) -> None:
        """Deliver the report effects; let the escalation engine fire action-item reminders."""
        escalation.add_reminder_kind(ReminderKind.ACTION_ITEM, ActionItemReminders(self.policy))
        if self.publisher is None:
            return  # reads only (the CLI): nothing here delivers to Slack
        from bot.reports.delivery import ReportDelivery

        ReportDelivery(self, self.publisher).register(dispatcher)

    # -- listening to incident changes (inside their transactions) ----------------------

    async def incident_changed(self, tx: Tx, change: IncidentChange) -> None:
        """Keep targets, the search index and App Home views in step with the incident."""
        incident, now = change.after, change.at
        if change.kind in _TARGET_CHANGES:
            targets = self.policy.targets(incident.severity)
            anchor = now if change.kind == "reopened" else incident.declared_at
            await storage.save_targets(
                tx,
                incident.id,
                due_after(anchor, targets.ack_within, self.policy.calendar),
                due_after(anchor, targets.resolve_within, self.policy.calendar),
            )
        await search.reindex(tx, incident)
        await self._refresh_viewers(tx, now)

    async def remediation_changed(self, tx: Tx, request: object, at: datetime) -> None:
        """A remediation request changed (a RemediationListener, inside its transaction):
        refresh every viewer's Home, whose approvals waiting it may add to or remove from."""
        await self._refresh_viewers(tx, at)

    async def _refresh_viewers(self, tx: Tx, now: datetime) -> None:
        # Each Home reads its own state when delivered, so every viewer gets one refresh.
        for user_id in await storage.viewers(tx):
            await self._queue_home(tx, user_id, now)

    async def _queue_home(self, tx: Tx, user_id: str, now: datetime) -> None:
        # Debounce: one refresh waiting per person is enough, since it reads the state when
        # delivered. The row lock keeps a dispatcher from claiming it while this change is
        # uncommitted (it would publish the state from before the change).
        if not await outbox.waiting(tx, HOME, {"user_id": user_id}):
            await outbox.enqueue(tx, now, HOME, {"user_id": user_id}, delay=self.home_debounce)
            tx.after_commit(self.dispatcher.kick)

    # -- the report ---------------------------------------------------------------------

    async def report(self, incident_id: str) -> ReportFacts:
        """Everything the post-incident report shows. NotFound for an unknown incident."""
        now = self.clock.now()
        async with self.store.transaction() as tx:
            incident = await self._get(tx, incident_id)
            events = await incidents.timeline(tx, incident.id)
            postmortem = await storage.get_postmortem(tx, incident.id)
            items = await storage.items_for_incident(tx, incident.id)
            ack_due, resolve_due = await storage.get_targets(tx, incident.id)
        acks = [e.at for e in events if e.kind == "acknowledged"]
        resolutions = [e.at for e in events if e.kind == "resolved"]
        resolved_at = resolutions[-1] if resolutions and not incident.is_open else None
        start = postmortem.started_at or incident.declared_at
        runs = None
        if self.remediations is not None:
            runs = tuple(await self.remediations.runs(incident.id))
        return ReportFacts(
            incident=incident,
            timeline=tuple(events),
            postmortem=postmortem,
            action_items=tuple(items),
            first_acknowledged_at=acks[0] if acks else None,
            resolved_at=resolved_at,
            ack_due_at=ack_due,
            resolve_due_at=resolve_due,
            working_seconds=working_seconds(start, resolved_at or now, self.policy),
            generated_at=now,
            remediations=runs,
        )

    async def report_markdown(self, incident_id: str) -> tuple[ReportFacts, str]:
        facts = await self.report(incident_id)
        return facts, markdown.render(facts)

    async def share_report(
        self, incident_id: str, actor: Actor, *, channel: str | None, request_id: str | None
    ) -> ReportFacts:
        """Queue the report's upload to the incident channel (or `channel`), on the timeline."""
        facts, text = await self.report_markdown(incident_id)
        incident = facts.incident
        target = incident.channel_id or channel or self.policy.announce_channel
        now = self.clock.now()
        async with self.store.transaction() as tx:
            await dedup.claim(tx, request_id, now)
            await outbox.enqueue(
                tx,
                now,
                UPLOAD_REPORT,
                {"channel": target, "markdown": text, "by": actor.user_id},
                lane=incident.id,
            )
            await journal.record(
                tx,
                now,
                incident.id,
                actor=actor.user_id,
                kind="report_shared",
                text=f"Post-incident report shared by <@{actor.user_id}>",
                action="reports.report",
                args={"channel": target, "open": incident.is_open},
                request_id=request_id,
            )
        self.dispatcher.kick()
        return facts

    # -- postmortem and action items ----------------------------------------------------

    async def postmortem(self, incident_id: str) -> tuple[Incident, Postmortem, list[ActionItem]]:
        """What the postmortem form is prefilled from."""
        async with self.store.transaction() as tx:
            incident = await self._get(tx, incident_id)
            postmortem = await storage.get_postmortem(tx, incident.id)
            items = await storage.items_for_incident(tx, incident.id)
        if not postmortem.resolution and incident.resolution:
            postmortem = Postmortem(**{**_fields(postmortem), "resolution": incident.resolution})
        return incident, postmortem, items

    async def save_postmortem(
        self,
        incident_id: str,
        actor: Actor,
        form: PostmortemInput,
        *,
        request_id: str | None = None,
    ) -> tuple[Postmortem, list[ActionItem]]:
        """Record the postmortem and add its new action items (each with its reminder)."""
        await self._require_responder(actor)
        now = self.clock.now()
        async with self.store.transaction() as tx:
            await dedup.claim(tx, request_id, now)
            incident = await self._get(tx, incident_id, lock=True)
            postmortem = Postmortem(
                incident_id=incident.id,
                root_cause=form.root_cause,
                resolution=form.resolution,
                prevention=form.prevention,
                lessons=form.lessons,
                affected_users=form.affected_users,
                data_impact=form.data_impact,
                started_at=form.started_at,
                detected_at=form.detected_at,
                updated_by=actor.user_id,
                updated_at=now,
            )
            await storage.save_postmortem(tx, postmortem)
            added = []
            for new in form.action_items:
                item = await storage.add_item(tx, incident.id, new, actor.user_id, now)
                await followups.plan(tx, item, now)
                added.append(item)
            await journal.record(
                tx,
                now,
                incident.id,
                actor=actor.user_id,
                kind="postmortem_saved",
                text=f"Postmortem recorded by <@{actor.user_id}>"
                + (f" with {len(added)} new action item(s)" if added else ""),
                action="reports.postmortem",
                args=form.model_dump(mode="json"),
                request_id=request_id,
            )
            await search.reindex(tx, incident)
            for user_id in {item.owner for item in added}:
                await self._queue_home(tx, user_id, now)
        return postmortem, added

    async def action_items(self, incident_id: str) -> tuple[Incident, list[ActionItem]]:
        async with self.store.transaction() as tx:
            incident = await self._get(tx, incident_id)
            return incident, await storage.items_for_incident(tx, incident.id)

    async def close_action_item(
        self, item_id: int, actor: Actor, *, request_id: str | None = None
    ) -> tuple[ActionItem, bool]:
        """Close an item (its owner or a responder); (item, False) when it was closed already.
        Its pending reminder is withdrawn in the same transaction."""
        now = self.clock.now()
        async with self.store.transaction() as tx:
            await dedup.claim(tx, request_id, now)
            item = await storage.get_item(tx, item_id)
            if item is None:
                raise NotFound(f"There is no action item #{item_id}.")
            if actor.user_id != item.owner and not await self.permissions.allows(
                actor, "responders"
            ):
                raise PermissionDenied("Only its owner or a responder may close an action item.")
            await self._get(tx, item.incident_id, lock=True)  # the engine's lock order
            if not await storage.close_item(tx, item.id, actor.user_id, now):
                return item, False
            await followups.cancel(tx, item, now, "closed")
            await journal.record(
                tx,
                now,
                item.incident_id,
                actor=actor.user_id,
                kind="action_item_closed",
                text=f"Action item #{item.id} closed by <@{actor.user_id}>: {item.text}",
                action="reports.action_item_close",
                args={"item_id": item.id},
                request_id=request_id,
            )
            await self._queue_home(tx, item.owner, now)
            closed = await storage.get_item(tx, item.id)
        assert closed is not None
        return closed, True

    # -- statistics ---------------------------------------------------------------------

    async def stats(self, days: int = 30) -> Stats:
        """Figures for the incidents declared in the last `days` days (1 to 366)."""
        if not 1 <= days <= MAX_STATS_DAYS:
            raise UsageError(f"Give a number of days from 1 to {MAX_STATS_DAYS}.")
        since, until = stats.window(self.clock.now(), days)
        async with self.store.transaction() as tx:
            return await stats.compute(tx, since=since, until=until, days=days)

    async def share_stats(
        self, days: int, actor: Actor, *, channel: str, request_id: str | None = None
    ) -> Stats:
        """Compute the figures, draw the chart and queue its upload to `channel`."""
        from bot.reports import chart  # matplotlib loads only when a chart is drawn

        figures = await self.stats(days)
        png = await asyncio.to_thread(chart.render_png, figures)
        now = self.clock.now()
        async with self.store.transaction() as tx:
            await dedup.claim(tx, request_id, now)
            await outbox.enqueue(
                tx,
                now,
                UPLOAD_STATS,
                {
                    "channel": channel,
                    "days": days,
                    "until": figures.until.timestamp(),
                    "png": base64.b64encode(png).decode(),
                    "by": actor.user_id,
                },
            )
            await audit.append(
                tx,
                now,
                AuditRecord(
                    actor=actor.user_id,
                    action="reports.stats",
                    target=channel,
                    outcome="ok",
                    args={"days": days},
                    request_id=request_id,
                ),
            )
        self.dispatcher.kick()
        return figures

    # -- similar incidents and the App Home --------------------------------------------

    async def similar(self, incident_id: str, limit: int = 3) -> list[SimilarIncident]:
        """Up to `limit` earlier incidents like this one, with what fixed them."""
        async with self.store.transaction() as tx:
            incident = await self._get(tx, incident_id)
            return await search.similar(tx, incident, limit)

    async def home(self, user_id: str) -> HomeFacts:
        """What `user_id`'s App Home shows now (drills are not incidents to show there)."""
        async with self.store.transaction() as tx:
            shown = await tx.fetchall(
                "SELECT id FROM incidents WHERE status <> 'resolved' AND NOT drill"
                f" ORDER BY severity, declared_at LIMIT {HOME_SHOWN}"
            )
            counts = await tx.fetchall(
                "SELECT severity, COUNT(*) AS n FROM incidents"
                " WHERE status <> 'resolved' AND NOT drill GROUP BY severity"
            )
            mine_rows = await tx.fetchall(
                "SELECT id FROM incidents WHERE status <> 'resolved' AND NOT drill"
                " AND (roles LIKE ? OR declared_by = ?) ORDER BY severity, declared_at LIMIT 5",
                (f'%"{user_id}"%', user_id),
            )
            open_incidents = [await self._get(tx, row["id"]) for row in shown]
            mine = []
            for row in mine_rows:
                incident = await self._get(tx, row["id"])
                roles = tuple(r for r, u in sorted(incident.roles.items()) if u == user_id)
                mine.append((incident, roles or ("declarer",)))
            items, items_total = await storage.open_items_for_owner(tx, user_id, HOME_ITEMS)
        by_severity = {Severity(row["severity"]): int(row["n"]) for row in counts}
        approvals = None
        if self.approvals is not None:
            approvals = tuple(await self.approvals.waiting_for(user_id))
        return HomeFacts(
            user_id=user_id,
            generated_at=self.clock.now(),
            mine=tuple(mine),
            open_incidents=tuple(open_incidents),
            open_total=sum(by_severity.values()),
            open_by_severity=by_severity,
            action_items=tuple(items),
            action_items_total=items_total,
            approvals=approvals,
        )

    async def home_opened(self, user_id: str) -> None:
        """Someone opened the App Home: remember them and queue their view at once."""
        now = self.clock.now()
        async with self.store.transaction() as tx:
            await storage.add_viewer(tx, user_id, now)
            await outbox.enqueue(tx, now, HOME, {"user_id": user_id})
        self.dispatcher.kick()

    # -- helpers ------------------------------------------------------------------------

    async def _get(self, tx: Tx, incident_id: str, *, lock: bool = False) -> Incident:
        incident = await incidents.get(tx, incident_id.upper(), lock=lock)
        if incident is None:
            raise NotFound(f"There is no incident {incident_id}.")
        return incident

    async def _require_responder(self, actor: Actor) -> None:
        if not await self.permissions.allows(actor, "responders"):
            raise PermissionDenied("Only responders may record a postmortem.")


def _fields(postmortem: Postmortem) -> dict[str, object]:
    return {name: getattr(postmortem, name) for name in Postmortem.__slots__}


__all__ = ["ReportService", "working_seconds"]
