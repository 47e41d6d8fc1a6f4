"""Paging services in the incident's life: paged by escalation, told of ack/resolve/reopen,
heard from when someone acknowledges there.

- Paging: a level naming `pagerduty` or `opsgenie` queues a trigger in the firing
  transaction (`page`), beside the Slack page, never instead of it.
- Both ways: as an IncidentListener, inside the changing transaction, an acknowledgement in
  Slack queues an acknowledge for every provider paged, a resolution a resolve, a reopening
  a new trigger. An acknowledgement made at the provider (its webhook) is recorded as that
  person's, and is not echoed back to the same provider.
- Nothing lost, nothing twice: each call is an outbox effect (retried on 429, 5xx and
  network errors; the incident ID as dedup key/alias makes a repeat harmless). A provider's
  calls keep their own order in a lane of their own (`lane`), delivered apart from the Slack
  posts (bot.outbox.apart), so an outage of PagerDuty, even one that never answers, holds up
  no Slack message; the outage is told once in the incident channel, and when the provider
  answers again (the outbox handlers: bot.paging.delivery).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from bot.clock import Clock
from bot.errors import Conflict, DuplicateRequest, NotFound, NotifierError
from bot.incidents.changes import Change, IncidentChange, IncidentChanges, Queued
from bot.incidents.queries import well_formed_id
from bot.incidents.service import IncidentService
from bot.logs import outside
from bot.models import SYSTEM, Actor, Incident
from bot.outbox import OutboxDispatcher
from bot.paging import storage
from bot.paging.delivery import ACKNOWLEDGE, RESOLVE, TRIGGER, PagingDelivery
from bot.paging.oncall import OnCallResolver
from bot.paging.pagerduty import PagerDutyPager
from bot.paging.ports import Pager, PersonDirectory, RefusedPages
from bot.paging.webhooks import ProviderAcknowledgement
from bot.policy import Policy
from bot.policy.paging import PagingConfig
from bot.store import Store, Tx

log = logging.getLogger(__name__)


def lane(incident_id: str, provider: str) -> str:
    """The outbox order key of one provider's calls about one incident.

    Calls to a provider keep their order (trigger before acknowledge before resolve) but
    wait for nothing else of the incident, and nothing of the incident waits for them.
    """
    return f"{incident_id}/{provider}"


class PagingService(PagingDelivery):
    """Pages providers, keeps them in step with the incident, and hears their acks."""

    def __init__(
        self,
        *,
        config: PagingConfig,
        policy: Policy,
        store: Store,
        clock: Clock,
        changes: IncidentChanges,
        incidents: IncidentService,
        pagers: Mapping[str, Pager],
        people: PersonDirectory | None,
        webhook_secrets: Mapping[str, str] | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.config = config
        self.policy = policy
        self.store = store
        self.clock = clock
        self.changes = changes
        self.incidents = incidents
        self.pagers = dict(pagers)
        self.people = people
        self.webhook_secrets = dict(webhook_secrets or {})
        self.oncall = OnCallResolver(self.pagers, people, ttl=config.oncall_cache_seconds)
        self._session = session
        # A level's page a provider refused for good is the level's to tell (bot.services).
        self.refused_pages: RefusedPages | None = None

    async def session(self) -> aiohttp.ClientSession:
        """The one HTTP session of every provider call, opened on first use."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    def register(self, dispatcher: OutboxDispatcher) -> None:
        """Say how provider calls are delivered: apart from the Slack posts, so a provider
        that hangs holds up none of them (bot.outbox)."""
        for kind in (TRIGGER, ACKNOWLEDGE, RESOLVE):
            dispatcher.register(kind, self._deliver, on_failure=self._failed, apart=True)

    # -- paging, from the escalation engine (inside the firing transaction) ---------------

    async def page(
        self,
        change: Change,
        incident: Incident,
        providers: Sequence[str],
        level: int,
        *,
        acknowledged: bool = False,
        by_hand: bool = False,
        page: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue a trigger for each provider a level names (escalation.extensions); a drill
        pages them only when the policy says `drills: {page_providers: true}`. A page made
        `by_hand` is triggered even when an acknowledgement overtakes it (it was asked for).
        `page`, the escalation page, rides with the trigger: refused for good, it is told
        and counted as that level's (`refused_pages`)."""
        if incident.drill and not self.policy.drills.page_providers:
            return
        for provider in providers:
            if provider not in self.pagers:
                continue
            await storage.set_state(
                change.tx, incident.id, provider, "paged", change.now, level=level
            )
            payload: dict[str, Any] = {
                "level": level,
                "acknowledged": acknowledged,
                "by_hand": by_hand,
            }
            if page is not None:
                payload["page"] = dict(page)
            await self._queue(change, incident.id, provider, TRIGGER, payload)

    async def _queue(
        self,
        change: Change,
        incident_id: str,
        provider: str,
        kind: str,
        extra: dict[str, Any] | None = None,
    ) -> None:
        payload = {"provider": provider, "incident_id": incident_id, **(extra or {})}
        await change.enqueue(lane(incident_id, provider), [Queued(kind, payload)])

    # -- both ways: the IncidentListener ---------------------------------------------------

    async def incident_changed(self, tx: Tx, change: IncidentChange) -> None:
        """Tell each provider paged for the incident what changed in Slack."""
        if change.kind not in ("acknowledged", "resolved", "reopened"):
            return
        alerts = await storage.for_incident(tx, change.after.id)
        if not alerts:
            return
        joined = self.changes.joining(tx, change.at)
        came_from = change.details.get("via")
        for alert in alerts:
            if alert.provider not in self.pagers:
                continue
            if change.kind == "acknowledged" and alert.state == "paged":
                await storage.set_state(
                    tx,
                    alert.incident_id,
                    alert.provider,
                    "acknowledged",
                    change.at,
                    level=alert.level,
                )
                if alert.provider != came_from:  # never echoed back to where it was made
                    await self._queue(joined, alert.incident_id, alert.provider, ACKNOWLEDGE)
            elif change.kind == "resolved" and alert.state != "resolved":
                await storage.set_state(
                    tx, alert.incident_id, alert.provider, "resolved", change.at, level=alert.level
                )
                await self._queue(joined, alert.incident_id, alert.provider, RESOLVE)
            elif change.kind == "reopened" and alert.state == "resolved":
                # Paged again by the level-1 page of this very change: one trigger is enough.
                await storage.set_state(
                    tx, alert.incident_id, alert.provider, "paged", change.at, level=alert.level
                )
                await self._queue(
                    joined,
                    alert.incident_id,
                    alert.provider,
                    TRIGGER,
                    {"level": alert.level, "reopened": True},
                )

    # -- acknowledgements made at the provider (webhooks) ---------------------------------

    def webhook_secret(self, provider: str) -> str | None:
        """The secret a provider's webhooks are checked with; None: no webhook accepted."""
        return self.webhook_secrets.get(provider) or None

    async def provider_acknowledged(self, ack: ProviderAcknowledgement) -> str:
        """Record an acknowledgement made at the provider as that person's; stops the pages.

        The person is found in Slack by e-mail (PagerDuty's user via its REST API); someone
        with no Slack account is named as the provider names them. A redelivered webhook
        changes nothing twice. Returns what happened, for the log and the HTTP answer.
        """
        try:
            incident_id = well_formed_id(ack.incident_id)
        except NotFound:
            return "ignored: not an incident of this bot"
        user = await self._slack_user(ack)
        actor = Actor(user_id=user) if user else SYSTEM
        try:
            outcome = await self.incidents.acknowledge(
                incident_id,
                actor,
                request_id=f"{ack.provider}:{ack.event_id}",
                via=ack.provider,
                via_person=ack.person_name or ack.person_email or "someone",
            )
        except DuplicateRequest:
            return "duplicate: already recorded"
        except NotFound:
            return "ignored: no such incident"
        except Conflict:
            return "ignored: the incident is resolved"
        return "acknowledged" if outcome.changed else "ignored: already acknowledged"

    async def _slack_user(self, ack: ProviderAcknowledgement) -> str | None:
        email = ack.person_email
        pager = self.pagers.get(ack.provider)
        try:
            if email is None and ack.person_id and isinstance(pager, PagerDutyPager):
                email = await pager.person_email(ack.person_id)
            if email and self.people is not None:
                return await self.people.user_by_email(email)
        except NotifierError as exc:
            # The acknowledgement stands all the same, recorded under the provider's name.
            log.warning(
                "%s acknowledgement: could not find the person: %s", ack.provider, outside(exc)
            )
        return None
