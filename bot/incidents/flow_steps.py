"""What every incident effect handler shares: the incident as it is now, queueing follow-up
effects, waking the dispatcher for them, and editing a card that may have been deleted."""

from __future__ import annotations

from typing import Any

from bot import outbox
from bot.clock import Clock
from bot.errors import NotifierError
from bot.incidents import storage
from bot.models import Incident
from bot.notify import EscalationShown, MessageRef, Notifier
from bot.outbox import Effect, OutboxDispatcher
from bot.policy import Policy
from bot.store import Store, Tx

# A card that is gone (deleted by a person) is posted again rather than edited.
_CARD_GONE = {"message_not_found", "cant_update_message"}


class FlowSteps:
    def __init__(self, *, store: Store, clock: Clock, policy: Policy) -> None:
        self.store = store
        self.clock = clock
        self.policy = policy
        self.dispatcher: OutboxDispatcher | None = None  # set when the handlers register

    async def incident(self, effect: Effect) -> Incident | None:
        """The effect's incident as it is now (None when it is gone)."""
        async with self.store.autocommit() as db:  # one read: no transaction of its own
            return await storage.get(db, effect.incident or "")

    async def incident_with_escalation(
        self, effect: Effect
    ) -> tuple[Incident, EscalationShown] | None:
        """The effect's incident and how far its pages have gone (the highest level paged,
        0: nobody yet), in one read, for a card to show and its Escalate button to carry.
        Escalation's own table, read here: the cards are drawn by these steps, and escalation
        depends on incidents, not the other way."""
        async with self.store.autocommit() as db:
            found = await storage.get_with_escalation_level(db, effect.incident or "")
        if found is None:
            return None
        incident, level = found
        return incident, EscalationShown(level, len(self.policy.levels(incident.severity)))

    async def queue(self, tx: Tx, incident: Incident, *kinds: str, **payload: Any) -> None:
        """Queue follow-up effects of `incident`, in the caller's transaction."""
        now = self.clock.now()
        for kind in kinds:
            await outbox.enqueue(tx, now, kind, dict(payload), lane=incident.id)

    def kick(self) -> None:
        """Deliver follow-up steps queued by a handler in the next round at once."""
        if self.dispatcher is not None:
            self.dispatcher.kick()


async def edit_card(
    notifier: Notifier, incident: Incident, ref: MessageRef, escalation: EscalationShown
) -> bool:
    """Edit a card in place; False when it is gone (other failures raise)."""
    try:
        await notifier.update_card(incident, ref, escalation=escalation)
    except NotifierError as exc:
        if exc.error_code not in _CARD_GONE:
            raise
        return False
    return True
