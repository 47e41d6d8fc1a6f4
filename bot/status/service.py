"""Publishing to the status page, and keeping its version number current.

`publish` and `unpublish` are incident changes like any other (bot.incidents.changes): the
public flags, the timeline line, the audit entry, the notice in the incident's channel and
the version bump commit together. As a listener, StatusService also marks the update a
person published from the update form (`publish` in the change's details) and bumps the
version whenever a public incident changes, so every process rebuilds its cached page.
Every bump is pushed to the other replicas once it commits (bot.status.push), so they all
serve the same page: a put-back update was shown by one replica and not by the others until
their next check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.errors import Conflict, PermissionDenied
from bot.incidents.changes import Change, IncidentChange, IncidentChanges
from bot.incidents.effects import NOTICE, queued
from bot.incidents.queries import well_formed_id
from bot.models import Actor, Incident
from bot.permissions import NOT_A_PUBLISHER, Permissions
from bot.refs import Person, Rich, notice_payload, text
from bot.status import storage
from bot.status.facts import RESOLVED_WINDOW_DAYS
from bot.status.page import StatusPage
from bot.status.push import StalePush
from bot.status.storage import StatusUpdate
from bot.store import Tx

PUBLISHED = "published"  # the timeline kind (and IncidentChange.kind) of a publication
WITHDRAWN = "withdrawn"  # ... and of a withdrawal (`/incident unpublish`)
# IncidentChange.details key: the status update of this change is published with it.
PUBLISH_DETAIL = "publish"


@dataclass(frozen=True, slots=True)
class Publication:
    """What `publish` did: the incident, whether it was newly made public, and how many
    of its status updates were."""

    incident: Incident
    newly_public: bool
    updates: int
    withdrawn: tuple[int, ...] = ()  # the numbers of updates withdrawn: they stay off

    @property
    def changed(self) -> bool:
        return self.newly_public or self.updates > 0


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """What `unpublish` took off the page: the whole incident (`update` None), or its
    status update number `update`."""

    incident: Incident
    update: int | None
    said: str = ""  # the withdrawn update's words, for the one who withdrew it to check


@dataclass(frozen=True, slots=True)
class Restoration:
    """What `publish ... update N` put back on the page: status update number `update`."""

    incident: Incident
    update: int
    said: str = ""  # its words, for the one who put it back to check


class StatusService:
    """Publishes incidents to the status page; listens to every incident change."""

    def __init__(
        self,
        *,
        changes: IncidentChanges,
        permissions: Permissions,
        page: StatusPage | None = None,
        push: StalePush | None = None,
    ) -> None:
        self.changes = changes
        self.permissions = permissions
        self.page = page  # this process's kept documents, dropped after a withdrawal
        self.push = push  # ... and the other replicas', told once it commits

    async def require_publisher(self, actor: Actor) -> None:
        """PermissionDenied unless the policy's `roles.publishers` (default: responders)
        holds `actor`."""
        if actor.is_system or not await self.permissions.allows(actor, "publishers"):
            raise PermissionDenied(NOT_A_PUBLISHER)

    async def publish(
        self, incident_id: str, actor: Actor, *, request_id: str | None = None
    ) -> Publication:
        """Make the incident and each of its status updates so far public, in one change.

        Nothing is recorded when everything already was public (`changed` is False).
        """
        await self.require_publisher(actor)
        incident_id = well_formed_id(incident_id)
        async with self.changes.begin(request_id=request_id) as change:
            incident = await change.lock(incident_id)
            if incident.drill:
                raise Conflict(f"{incident.id} is a drill: practice never goes on the status page.")
            shown_since = change.now - timedelta(days=RESOLVED_WINDOW_DAYS)
            if incident.resolved_at is not None and incident.resolved_at < shown_since:
                raise Conflict(
                    f"{incident.id} was resolved more than {RESOLVED_WINDOW_DAYS} days ago: the"
                    f" status page lists only those resolved in the last {RESOLVED_WINDOW_DAYS}"
                    " days, so nothing changed."
                )
            tx = change.tx
            newly = await storage.mark_incident(tx, incident.id, change.now, actor.user_id)
            updates = await storage.mark_updates(tx, incident.id, change.now, actor.user_id)
            # Those withdrawn one by one stay off: the answer names them, whatever it did.
            listed = await storage.status_updates(tx, incident.id)
            withdrawn = tuple(u.number for u in listed if u.withdrawn)
            publication = Publication(incident, newly, updates, withdrawn)
            if not publication.changed:
                return publication

            text = _published_line(actor, newly, updates)
            details = {"updates": updates, "newly_public": newly}
            await self._record(change, incident, actor, PUBLISHED, text, details)
        await self._push()
        return publication

    async def restore(
        self, incident_id: str, actor: Actor, update: int, *, request_id: str | None = None
    ) -> Restoration:
        """Put the withdrawn status update number `update` back on the page, in one change
        (version bump, timeline line, audit entry, notice): the undo of `unpublish ... update
        N`. Conflict, changing nothing, when it was not withdrawn or the incident is not public.
        """
        await self.require_publisher(actor)
        incident_id = well_formed_id(incident_id)
        async with self.changes.begin(request_id=request_id) as change:
            incident = await change.lock(incident_id)
            tx = change.tx
            chosen = await _withdrawn_update(tx, incident, update)
            await storage.restore_update(tx, chosen.id, change.now, actor.user_id)
            line = text(
                f"Status update {update} put back on the status page by ", Person(actor.user_id)
            )
            await self._record(change, incident, actor, PUBLISHED, line, {"update": update})
        await self._push()  # put back: every replica shows it now, as it would drop it
        return Restoration(incident, update, chosen.said)

    async def unpublish(
        self,
        incident_id: str,
        actor: Actor,
        *,
        update: int | None = None,
        last: bool = False,
        request_id: str | None = None,
    ) -> Withdrawal:
        """Take the incident (or only its status update number `update`, or its newest
        published one with `last`) off the status page, in one change that bumps the page's
        version: every process, ETag and feed stops showing it at its next read.

        Conflict, changing nothing, when that is not on the page.
        """
        await self.require_publisher(actor)
        incident_id = well_formed_id(incident_id)
        async with self.changes.begin(request_id=request_id) as change:
            incident = await change.lock(incident_id)
            tx = change.tx
            if update is None and not last:
                if not await storage.withdraw_incident(tx, incident.id):
                    raise Conflict(f"{incident.id} is not on the status page; nothing changed.")
                withdrawal = Withdrawal(incident, None)
            else:
                chosen = await _published_update(tx, incident, update)
                await storage.withdraw_update(tx, chosen.id, change.now)
                withdrawal = Withdrawal(incident, chosen.number, chosen.said)
            line = _withdrawn_line(actor, withdrawal.update)
            details: dict[str, object] = {"update": withdrawal.update} if withdrawal.update else {}
            await self._record(change, incident, actor, WITHDRAWN, line, details)
        await self._push()
        return withdrawal

    async def _push(self) -> None:
        """Committed: the other replicas read the version now (awaited, so the answer to
        the command comes once they were told)."""
        if self.push is not None:
            await self.push.send()

    def _bumped(self, tx: Tx, *, push: bool) -> None:
        """After the version bump commits: this process reads the version at its next
        request, and (`push`) the other replicas are told without waiting for it."""
        if self.page is not None:
            tx.after_commit(self.page.stale)
        if push and self.push is not None:
            tx.after_commit(self.push.send_soon)

    async def _record(
        self,
        change: Change,
        incident: Incident,
        actor: Actor,
        kind: str,
        line: Rich,
        details: dict[str, Any],
    ) -> None:
        await _record(change, incident, actor, kind, line, details)
        self._bumped(change.tx, push=False)  # the command pushes once committed

    async def incident_changed(self, tx: Tx, change: IncidentChange) -> None:
        """Inside the change's transaction: publish the update it carries when asked to, and
        bump the version when a public incident changed."""
        if change.kind in (PUBLISHED, WITHDRAWN):
            return  # publish() and unpublish() bumped already
        incident_id = change.after.id
        if change.after.drill:
            return  # practice: never public
        if change.details.get(PUBLISH_DETAIL):
            actor = change.actor.user_id
            await storage.mark_incident(tx, incident_id, change.at, actor)
            await storage.mark_updates(tx, incident_id, change.at, actor, latest_only=True)
            await storage.bump(tx)
            self._bumped(tx, push=True)
            # Said in the incident's channel, as `/incident publish` is (the update's own
            # timeline line says it was published; its audit entry has `publish: true`).
            line = text("Published to the status page by ", Person(actor), " with this update")
            payload = {
                "kind": PUBLISHED,
                **notice_payload(line),
                "said": "",
                "actor": actor,
                "details": {},
            }
            joined = self.changes.joining(tx, change.at)
            await joined.enqueue(incident_id, queued((NOTICE,), payload, change.after))
        elif change.kind != "declared" and await storage.is_public(tx, incident_id):
            # (An incident being declared has not been published: no read to ask.)
            await storage.bump(tx)
            self._bumped(tx, push=True)


async def _record(
    change: Change, incident: Incident, actor: Actor, kind: str, line: Rich, details: dict[str, Any]
) -> None:
    """A publication or withdrawal as one incident change: its timeline line, audit entry and
    war-room notice, the page's version bumped, the change announced to the listeners."""
    payload = {
        "kind": kind,
        **notice_payload(line),
        "said": "",
        "actor": actor.user_id,
        "details": details,
    }
    await change.record(
        incident.id,
        actor=actor.user_id,
        kind=kind,
        text=line,
        action="incident.publish" if kind == PUBLISHED else "incident.unpublish",
        args=details,
        effects=queued((NOTICE,), payload, incident),
        data=details,
    )
    await storage.bump(change.tx)
    await change.announce(IncidentChange(kind, incident, incident, actor, change.now, details))


def _published_line(actor: Actor, newly: bool, updates: int) -> Rich:
    counted = f"{updates} status update{'s' if updates != 1 else ''}"
    if newly:
        return text("Published to the status page by ", Person(actor.user_id), f" with {counted}")
    return text(f"{counted} published to the status page by ", Person(actor.user_id))


async def _published_update(tx: Tx, incident: Incident, number: int | None) -> StatusUpdate:
    """The status update `number`, or the newest published one (None); Conflict naming the
    published ones when that one is not on the page."""
    updates = await storage.status_updates(tx, incident.id)
    published = [u for u in updates if u.public]
    shown = ", ".join(str(u.number) for u in published)
    plural = "s" if len(published) > 1 else ""
    on_page = f" (on the page: update{plural} {shown})" if published else ""
    if number is None:
        if not published:
            raise Conflict(f"No status update of {incident.id} is on the status page.")
        return published[-1]
    if number > len(updates):
        counted = f"{len(updates)} status update{'s' if len(updates) != 1 else ''}"
        raise Conflict(f"{incident.id} has {counted}; there is no update {number}{on_page}.")
    chosen = updates[number - 1]
    if not chosen.public:
        gone = "was withdrawn already" if chosen.withdrawn else "is not on the status page"
        raise Conflict(f"Update {number} of {incident.id} {gone}{on_page}.")
    return chosen


async def _withdrawn_update(tx: Tx, incident: Incident, number: int) -> StatusUpdate:
    """The status update `number` when it was withdrawn on its own and its incident is on the
    page; Conflict saying why not (naming the withdrawn ones) otherwise."""
    if incident.drill:
        raise Conflict(f"{incident.id} is a drill: practice never goes on the status page.")
    updates = await storage.status_updates(tx, incident.id)
    withdrawn = [u for u in updates if u.withdrawn]
    shown = ", ".join(str(u.number) for u in withdrawn)
    plural = "s" if len(withdrawn) > 1 else ""
    named = f" (withdrawn: update{plural} {shown})" if withdrawn else " (none is withdrawn)"
    if number > len(updates):
        counted = f"{len(updates)} status update{'s' if len(updates) != 1 else ''}"
        raise Conflict(f"{incident.id} has {counted}; there is no update {number}{named}.")
    chosen = updates[number - 1]
    if not chosen.withdrawn:
        if chosen.public:
            raise Conflict(f"Update {number} of {incident.id} is on the status page already.")
        raise Conflict(
            f"Update {number} of {incident.id} was never withdrawn{named}; "
            f"`/incident publish {incident.id}` publishes the updates not on the page yet."
        )
    if not await storage.is_public(tx, incident.id):
        raise Conflict(
            f"{incident.id} is not on the status page; publish it first "
            f"(`/incident publish {incident.id}`), then put update {number} back."
        )
    return chosen


def _withdrawn_line(actor: Actor, update: int | None) -> Rich:
    what = f"Status update {update} withdrawn" if update else "Withdrawn"
    return text(f"{what} from the status page by ", Person(actor.user_id))
