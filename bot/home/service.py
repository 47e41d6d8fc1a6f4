"""HomeService: what one person's App Home shows, and its refreshes. Plain async Python; Slack
only via the HomePublisher port.

It is an IncidentListener and a RemediationListener: in the transaction of every incident
change and every change of a remediation request it queues a refresh of each viewer's Home
(who opened it within `viewer_window`; the others are pruned when anyone opens it, and get
theirs fresh when they open it again). Views go through the outbox, so a Slack outage loses
nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot import outbox
from bot.clock import Clock
from bot.home import storage
from bot.home.models import ApprovalsWaiting, HomeFacts
from bot.home.publisher import HomePublisher
from bot.incidents import storage as incidents
from bot.incidents.service import IncidentChange
from bot.models import Severity
from bot.outbox import Effect, OutboxDispatcher
from bot.reports import storage as reports
from bot.store import Store, Tx

HOME = "reports.home"  # the outbox kind; its name predates this package (rows keep it)
HOME_SHOWN = 15  # open incidents listed one by one on the App Home (the rest are counted)
HOME_ITEMS = 10
MINE_SHOWN = 5  # the viewer's own incidents listed one by one (the rest are counted)
# Whose Home a change refreshes: who opened it this recently. Slack tells each opening
# (app_home_opened), so a Home in use stays a viewer; one left for longer is not worth a
# views.publish per change of every incident.
HOME_VIEWER_WINDOW = timedelta(days=7)


class HomeService:
    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        dispatcher: OutboxDispatcher,
        publisher: HomePublisher | None = None,
        approvals: ApprovalsWaiting | None = None,
        home_debounce: float = 2.0,
        viewer_window: timedelta = HOME_VIEWER_WINDOW,
    ) -> None:
        self.store = store
        self.clock = clock
        self.dispatcher = dispatcher
        self.publisher = publisher
        self.approvals = approvals
        self.home_debounce = home_debounce
        self.viewer_window = viewer_window

    def register(self, dispatcher: OutboxDispatcher) -> None:
        """Deliver the Home views (nothing to deliver without a publisher: the CLI)."""
        if self.publisher is not None:
            dispatcher.register(HOME, self._deliver_home)

    # -- listening to changes (inside their transactions) -------------------------------

    async def incident_changed(self, tx: Tx, change: IncidentChange) -> None:
        """Keep App Home views in step with the incident."""
        await self.refresh_viewers(tx, change.at)

    async def remediation_changed(self, tx: Tx, request: object, at: datetime) -> None:
        """A remediation request changed (a RemediationListener, inside its transaction):
        refresh every viewer's Home, whose approvals waiting it may add to or remove from."""
        await self.refresh_viewers(tx, at)

    async def refresh_viewers(self, tx: Tx, now: datetime) -> None:
        """Queue a refresh of every viewer's Home, in the caller's transaction."""
        # Each Home reads its own state when delivered, so every viewer gets one refresh.
        # Read, not pruned here: this runs in every change's transaction (declarations').
        viewers = await storage.viewers(tx, now - self.viewer_window)
        if not viewers:
            return
        # Two statements whatever the number of viewers (one per viewer made every change
        # of a busy workspace's incidents cost a round trip per person who ever looked).
        waiting = {payload.get("user_id") for payload in await outbox.waiting_payloads(tx, HOME)}
        queued = False
        for user_id in viewers:
            if user_id not in waiting:
                await outbox.enqueue(tx, now, HOME, {"user_id": user_id}, delay=self.home_debounce)
                queued = True
        if queued:
            tx.after_commit(self.dispatcher.kick)

    async def queue(self, tx: Tx, user_id: str, now: datetime) -> None:
        """Queue a refresh of `user_id`'s Home, in the caller's transaction."""
        # Debounce: one refresh waiting per person is enough, since it reads the state when
        # delivered. The row lock keeps a dispatcher from claiming it while this change is
        # uncommitted (it would publish the state from before the change).
        if not await outbox.waiting(tx, HOME, {"user_id": user_id}):
            await outbox.enqueue(tx, now, HOME, {"user_id": user_id}, delay=self.home_debounce)
            tx.after_commit(self.dispatcher.kick)

    # -- the App Home ---------------------------------------------------------------------

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
            naming = " AND (roles LIKE ? OR declared_by = ?)"
            mine_rows = await tx.fetchall(
                "SELECT id FROM incidents WHERE status <> 'resolved' AND NOT drill"
                f"{naming} ORDER BY severity, declared_at LIMIT {MINE_SHOWN}",
                (f'%"{user_id}"%', user_id),
            )
            mine_total = await tx.fetchone(
                "SELECT COUNT(*) AS n FROM incidents WHERE status <> 'resolved' AND NOT drill"
                + naming,
                (f'%"{user_id}"%', user_id),
            )
            open_incidents = [await incidents.require(tx, row["id"]) for row in shown]
            mine = []
            for row in mine_rows:
                incident = await incidents.require(tx, row["id"])
                roles = tuple(r for r, u in sorted(incident.roles.items()) if u == user_id)
                mine.append((incident, roles or ("declarer",)))
            items, items_total = await reports.open_items_for_owner(tx, user_id, HOME_ITEMS)
        by_severity = {Severity(row["severity"]): int(row["n"]) for row in counts}
        approvals = None
        if self.approvals is not None:
            approvals = tuple(await self.approvals.waiting_for(user_id))
        return HomeFacts(
            user_id=user_id,
            generated_at=self.clock.now(),
            mine=tuple(mine),
            mine_total=int(mine_total["n"]) if mine_total else len(mine),
            open_incidents=tuple(open_incidents),
            open_total=sum(by_severity.values()),
            open_by_severity=by_severity,
            action_items=tuple(items),
            action_items_total=items_total,
            approvals=approvals,
        )

    async def home_opened(self, user_id: str) -> None:
        """Someone opened the App Home: remember them and queue their view at once; forget
        the viewers who have not opened it within the window."""
        now = self.clock.now()
        async with self.store.transaction() as tx:
            await storage.prune_viewers(tx, now - self.viewer_window)
            await storage.add_viewer(tx, user_id, now)
            await outbox.enqueue(tx, now, HOME, {"user_id": user_id})
        self.dispatcher.kick()

    async def _deliver_home(self, effect: Effect) -> None:
        assert self.publisher is not None  # registered only with one
        await self.publisher.publish_home(await self.home(effect.payload["user_id"]))


__all__ = ["HOME", "HomeService"]
