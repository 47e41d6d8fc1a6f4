"""ReportService: the post-incident report, statistics and similar past incidents (postmortems
and action items: bot.reports.postmortems). Plain async Python; Slack only via ports.

It is also an IncidentListener: in the transaction of every incident change it records the
targets the incident is held to and rewrites its search document. Uploads and reminders go
through the outbox, so a Slack outage loses nothing.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from bot import audit, dedup, outbox, refs
from bot.audit import AuditRecord
from bot.clock import Clock
from bot.errors import UsageError
from bot.incidents import journal
from bot.incidents import storage as incidents
from bot.incidents.service import IncidentChange
from bot.models import Actor, Incident
from bot.outbox import OutboxDispatcher
from bot.policy import Policy
from bot.reminders.calendar import due_after, working_periods
from bot.reminders.engine import ReminderEngine
from bot.reports import markdown, search, stats, storage
from bot.reports.chart_pace import ChartPace
from bot.reports.delivery import UPLOAD_REPORT, UPLOAD_STATS, ReportDelivery
from bot.reports.followups import ActionItemReminders
from bot.reports.models import (
    RemediationHistory,
    ReportFacts,
    SimilarIncident,
    Stats,
)
from bot.reports.publisher import ReportPublisher
from bot.store import Store, Tx

log = logging.getLogger(__name__)

_T = TypeVar("_T")

MAX_STATS_DAYS = 366
# Targets count from the declaration, as MTTA and MTTR do: a reopening does not move them
# (it once did, and a late first acknowledgement then read "met" against the new deadline).
_TARGET_CHANGES = {"declared", "severity_changed"}


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


def _check_days(days: int) -> None:
    if not 1 <= days <= MAX_STATS_DAYS:
        raise UsageError(f"Give a number of days from 1 to {MAX_STATS_DAYS}.")


class ReportService:
    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        policy: Policy,
        dispatcher: OutboxDispatcher,
        publisher: ReportPublisher | None = None,
        remediations: RemediationHistory | None = None,
        chart_pace: ChartPace | None = None,
        report_pace: ChartPace | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.policy = policy
        self.dispatcher = dispatcher
        self.publisher = publisher
        self.remediations = remediations
        # One chart per person at a time (None: unpaced, as the CLI that draws for its user).
        self.chart_pace = chart_pace
        self.report_pace = report_pace  # the same, for shared reports

    def register(self, dispatcher: OutboxDispatcher, engine: ReminderEngine) -> None:
        """Deliver the report effects; let the reminder engine fire action-item reminders."""
        ActionItemReminders(self.policy).register(engine)
        if self.publisher is None:
            return  # reads only (the CLI): nothing here delivers to Slack
        ReportDelivery(self.store, self.clock, self.publisher).register(dispatcher)

    # -- listening to incident changes (inside their transactions) ----------------------

    async def incident_changed(self, tx: Tx, change: IncidentChange) -> None:
        """Keep targets and the search index in step with the incident."""
        incident = change.after
        if change.kind in _TARGET_CHANGES:
            times = self.policy.response_times(incident.severity)
            await storage.save_targets(
                tx,
                incident.id,
                due_after(incident.declared_at, times.ack_within, self.policy.calendar),
                due_after(incident.declared_at, times.resolve_within, self.policy.calendar),
            )
        await search.reindex(tx, incident, new=change.kind == "declared")

    # -- the report ---------------------------------------------------------------------

    async def report(self, incident_id: str) -> ReportFacts:
        """Everything the post-incident report shows. NotFound for an unknown incident."""
        now = self.clock.now()
        async with self.store.transaction() as tx:
            incident = await incidents.require(tx, incident_id)
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
            first_resolved_at=resolutions[0] if resolutions else None,
            zone=self.policy.calendar.zone,
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
        """Queue the report's upload to the incident channel (or `channel`), on the timeline.

        ChartTooSoon when `actor` shared one moments ago (see bot.reports.chart_pace)."""
        return await self._paced(
            self.report_pace,
            actor,
            lambda: self._share_report(incident_id, actor, channel, request_id),
        )

    async def _share_report(
        self, incident_id: str, actor: Actor, channel: str | None, request_id: str | None
    ) -> ReportFacts:
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
                text=refs.text("Post-incident report shared by ", refs.Person(actor.user_id)),
                action="reports.report",
                args={"channel": target, "open": incident.is_open},
                request_id=request_id,
            )
        self.dispatcher.kick()
        return facts

    # -- statistics ---------------------------------------------------------------------

    async def stats(self, days: int = 30) -> Stats:
        """Figures for the incidents declared in the last `days` days (1 to 366)."""
        _check_days(days)
        since, until = stats.window(self.clock.now(), days)
        async with self.store.transaction() as tx:
            return await stats.compute(tx, since=since, until=until, days=days)

    async def share_stats(
        self, days: int, actor: Actor, *, channel: str, request_id: str | None = None
    ) -> Stats:
        """Compute the figures, draw the chart and queue its upload to `channel`.

        ChartTooSoon when `actor` drew one moments ago (see bot.reports.chart_pace)."""
        _check_days(days)  # a typo is told as such, and costs no chart
        return await self._paced(
            self.chart_pace, actor, lambda: self._share_stats(days, actor, channel, request_id)
        )

    @staticmethod
    async def _paced(pace: ChartPace | None, actor: Actor, work: Callable[[], Awaitable[_T]]) -> _T:
        """`work` within `actor`'s pace: refused (ChartTooSoon) during their last pause; a
        pause that shared nothing is given back."""
        if pace is None:
            return await work()
        held = await pace.take(actor.user_id)
        try:
            return await work()
        except BaseException:
            await pace.give_back(actor.user_id, held)  # nothing made is shared
            raise

    async def _share_stats(
        self, days: int, actor: Actor, channel: str, request_id: str | None
    ) -> Stats:
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

    # -- similar incidents --------------------------------------------------------------

    async def similar(self, incident_id: str, limit: int = 3) -> list[SimilarIncident]:
        """Up to `limit` earlier incidents like this one, with what fixed them."""
        async with self.store.transaction() as tx:
            incident = await incidents.require(tx, incident_id)
            return await search.similar(tx, incident, limit)

    async def similar_to(self, incident: Incident, limit: int = 3) -> list[SimilarIncident]:
        """`similar` for an incident the caller holds (one just declared or shown): the
        search alone, without reading the incident again."""
        async with self.store.autocommit() as db:  # reads only: no transaction of their own
            return await search.similar(db, incident, limit)


__all__ = ["ReportService", "working_seconds"]
