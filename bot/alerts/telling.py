"""What decided alerts tell their incident, in the deciding transaction: the timeline line,
one thread message per batch (`alerts.post`, after `batch_window`), the diagnosis the first
time (`alerts.diagnose`), and the alerts' count on the card. No Slack here: the outbox
carries them (bot.alerts.delivery)."""

from __future__ import annotations

from bot import outbox
from bot.alerts import storage
from bot.alerts.storage import StoredAlert
from bot.alerts.wording import names
from bot.incidents import storage as incident_storage
from bot.incidents.changes import Change, IncidentChanges, Queued
from bot.incidents.effects import REFRESH
from bot.models import SYSTEM, Incident
from bot.policy import Policy
from bot.policy.alerts import AlertsConfig

# The card's Current Status shows the alerts' count while no person has written one.
CARD_PREFIX = "Alerts: "
POST = "alerts.post"  # one thread message telling a batch of alerts
DIAGNOSE = "alerts.diagnose"  # run /diagnose for the service, post it in the war room


class AlertTelling:
    """The lines, messages and card updates of the alerts AlertService decides."""

    def __init__(self, *, policy: Policy, changes: IncidentChanges) -> None:
        self.policy = policy
        self.config: AlertsConfig = policy.alerts
        self.changes = changes

    async def told(
        self,
        change: Change,
        incident: Incident,
        service: str,
        line: str,
        outcome: str,
        items: list[StoredAlert],
        *,
        said: str | None = None,
    ) -> None:
        """The timeline line, the batch's thread message, the diagnosis the first time.

        `line` ends with the alerts' names (names(items), or `said`): a monitor's words,
        kept as `said` so every surface shows them as text, never as mentions or links."""
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
            said=names(items) if said is None else said,
            action=f"alerts.{outcome}",
            args={
                "service": service,
                "count": len(items),
                "alerts": [{"name": i.name, "fingerprint": i.fingerprint} for i in items[:20]],
            },
            effects=effects,
        )
        # After the diagnosis: its summary is the first thing in the war room, then the list.
        await self.queue_post(change, incident.id)

    async def queue_post(self, change: Change, incident_id: str) -> None:
        batch = await storage.queue_post(change.tx, incident_id)
        if batch is None:
            return  # a message is queued already: it will tell these too
        # The batch waits `batch_window`, so one message tells every alert that came meanwhile.
        await outbox.enqueue(
            change.tx,
            change.now,
            POST,
            {"batch": batch},
            lane=incident_id,
            delay=self.config.batch_window.seconds,
        )
        change.tx.after_commit(self.changes.dispatcher.kick)

    async def card(self, change: Change, incident_id: str) -> None:
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
            if firing and await storage.cut_short(change.tx, incident_id):
                # Said, not guessed away: the monitor also leaves out alerts its silences
                # hold, so an alert missing from a post may well be firing still.
                status += (
                    " The monitor's posts left part of the group out (its max_alerts, or"
                    " past the 2,000 alerts a post the bot takes): an alert left out is never"
                    " told resolved here, so some of these may have cleared. Check the"
                    " monitor."
                )
        if status == incident.current_status:
            return
        await incident_storage.update(
            change.tx, incident.evolve(current_status=status, updated_at=change.now)
        )
        await change.enqueue(incident_id, [Queued(REFRESH, {"kind": "alerts"})])
