"""What every part of IncidentService shares: its ports, and who may change an incident."""

from __future__ import annotations

from dataclasses import dataclass

from bot.clock import Clock
from bot.errors import PermissionDenied
from bot.incidents.changes import IncidentChanges
from bot.incidents.queries import IncidentQueries
from bot.models import Actor, Incident
from bot.notify import Notifier
from bot.permissions import Permissions
from bot.policy import Policy
from bot.store import Store


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a lifecycle method did: the incident after it, and whether anything changed."""

    incident: Incident
    changed: bool = True
    message: str = ""


class IncidentServiceBase(IncidentQueries):
    """The ports of IncidentService and the responder check; reads too (IncidentQueries)."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        policy: Policy,
        changes: IncidentChanges,
        permissions: Permissions,
        notifier: Notifier | None = None,
    ) -> None:
        super().__init__(store=store)
        self.permissions = permissions
        # Only read from (a message copied to the timeline); sending goes through the outbox.
        self.notifier = notifier
        self.clock = clock
        self.policy = policy
        self.changes = changes

    async def require_responder(self, actor: Actor) -> None:
        """PermissionDenied unless `actor` may change incidents (`roles.responders`): asked
        when a form opens too, so nobody types an update only to have it refused."""
        await self._require_responder(actor)

    async def _require_responder(self, actor: Actor) -> None:
        if actor.is_system:
            return
        if not await self.permissions.allows(actor, "responders"):
            raise PermissionDenied("Only responders may change incidents.")
