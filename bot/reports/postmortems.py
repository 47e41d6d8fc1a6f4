"""PostmortemService: the postmortem and its action items (each with its reminder), recorded
in one transaction with their timeline lines and the owners' App Home refreshes."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Protocol

from bot import dedup, refs
from bot.clock import Clock
from bot.errors import NotFound, PermissionDenied
from bot.incidents import journal
from bot.incidents import storage as incidents
from bot.models import Actor, Incident
from bot.permissions import Permissions
from bot.reports import followups, search, storage
from bot.reports.forms import IMPACT_TIMES, TEXT_FIELDS, PostmortemInput
from bot.reports.models import ActionItem, Postmortem, latest_resolution, stale_resolution
from bot.store import Store, Tx


class HomeViews(Protocol):
    """The App Home's refreshes (bot.home): an owner's action items changed."""

    async def queue(self, tx: Tx, user_id: str, now: datetime) -> None: ...


class PostmortemService:
    def __init__(
        self, *, store: Store, clock: Clock, permissions: Permissions, home: HomeViews
    ) -> None:
        self.store = store
        self.clock = clock
        self.permissions = permissions
        self.home = home

    async def postmortem(
        self, incident_id: str, *, actor: Actor | None = None
    ) -> tuple[Incident, Postmortem, list[ActionItem]]:
        """What the postmortem form is prefilled from. With `actor` (who opens the form),
        PermissionDenied unless they may save it: nobody writes a postmortem to lose it."""
        if actor is not None:
            await self._require_responder(actor)
        async with self.store.transaction() as tx:
            incident = await incidents.require(tx, incident_id)
            postmortem = await storage.get_postmortem(tx, incident.id)
            items = await storage.items_for_incident(tx, incident.id)
            reopened_at = await storage.last_reopened(tx, incident.id)
        resolution = latest_resolution(incident, postmortem, reopened_at)
        return incident, replace(postmortem, resolution=resolution), items

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
            incident = await incidents.require(tx, incident_id, lock=True)
            # Only what the submitter edited: someone else may have saved meanwhile.
            recorded = await storage.get_postmortem(tx, incident.id)
            edited = {name: getattr(form, name) for name in TEXT_FIELDS if form.edited(name)}
            if "resolution" not in edited and stale_resolution(
                recorded, await storage.last_reopened(tx, incident.id)
            ):
                # Left as the form showed it (the incident's latest): the fix recorded before
                # the reopening did not hold, so the postmortem follows the incident's again.
                edited["resolution"] = ""
            if form.edited(IMPACT_TIMES):
                edited |= {"started_at": form.started_at, "detected_at": form.detected_at}
            postmortem = replace(recorded, **edited, updated_by=actor.user_id, updated_at=now)
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
                text=refs.text(
                    "Postmortem recorded by ",
                    refs.Person(actor.user_id),
                    f" with {len(added)} new action item(s)" if added else "",
                ),
                action="reports.postmortem",
                args=form.model_dump(mode="json", exclude={"shown"}),
                request_id=request_id,
            )
            await search.reindex(tx, incident)
            for user_id in {item.owner for item in added}:
                await self.home.queue(tx, user_id, now)
        return postmortem, added

    async def action_items(self, incident_id: str) -> tuple[Incident, list[ActionItem]]:
        async with self.store.transaction() as tx:
            incident = await incidents.require(tx, incident_id)
            return incident, await storage.items_for_incident(tx, incident.id)

    async def close_action_item(
        self, item_id: int, actor: Actor, *, request_id: str | None = None
    ) -> tuple[ActionItem, bool]:
        """Close an item (its owner or a responder); (item, False) when it was closed already.
        Its pending reminder is withdrawn in the same transaction."""
        # Who is a responder is a directory look-up (Slack): resolved before any row is
        # locked. An item's owner never changes, so the check holds inside the transaction.
        async with self.store.transaction() as tx:
            found = await storage.get_item(tx, item_id)
        if found is None:
            raise NotFound(f"There is no action item #{item_id}.")
        if actor.user_id != found.owner and not await self.permissions.allows(actor, "responders"):
            raise PermissionDenied("Only its owner or a responder may close an action item.")
        now = self.clock.now()
        async with self.store.transaction() as tx:
            await dedup.claim(tx, request_id, now)
            item = await storage.get_item(tx, item_id)
            if item is None:
                raise NotFound(f"There is no action item #{item_id}.")
            await incidents.require(tx, item.incident_id, lock=True)  # the engine's lock order
            if not await storage.close_item(tx, item.id, actor.user_id, now):
                return item, False
            await followups.cancel(tx, item, now, "closed")
            await journal.record(
                tx,
                now,
                item.incident_id,
                actor=actor.user_id,
                kind="action_item_closed",
                text=refs.text(
                    f"Action item #{item.id} closed by ",
                    refs.Person(actor.user_id),
                    f": {item.text}",
                ),
                action="reports.action_item_close",
                args={"item_id": item.id},
                request_id=request_id,
            )
            await self.home.queue(tx, item.owner, now)
            closed = await storage.get_item(tx, item.id)
        assert closed is not None
        return closed, True

    async def _require_responder(self, actor: Actor) -> None:
        if not await self.permissions.allows(actor, "responders"):
            raise PermissionDenied("Only responders may record a postmortem.")


__all__ = ["HomeViews", "PostmortemService"]
