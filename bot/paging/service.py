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
  answers again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from bot.clock import Clock
from bot.errors import Conflict, DuplicateRequest, NotFound, NotifierError
from bot.incidents import storage as incidents
from bot.incidents.changes import Change, IncidentChange, IncidentChanges, Queued
from bot.incidents.effects import NOTICE
from bot.incidents.queries import well_formed_id
from bot.incidents.service import IncidentService
from bot.logs import outside
from bot.models import SYSTEM, Actor, Incident
from bot.outbox import Effect, OutboxDispatcher
from bot.paging import storage
from bot.paging.oncall import OnCallResolver
from bot.paging.pagerduty import PagerDutyPager
from bot.paging.ports import Alert, Pager, PersonDirectory, RefusedPages
from bot.paging.webhooks import ProviderAcknowledgement
from bot.policy import Policy
from bot.policy.paging import PROVIDER_NAMES, PagingConfig
from bot.store import Store, Tx

log = logging.getLogger(__name__)

TRIGGER = "paging.trigger"
ACKNOWLEDGE = "paging.acknowledge"
RESOLVE = "paging.resolve"
_VERBS = {TRIGGER: "page", ACKNOWLEDGE: "acknowledge", RESOLVE: "resolve"}


def lane(incident_id: str, provider: str) -> str:
    """The outbox order key of one provider's calls about one incident.

    Calls to a provider keep their order (trigger before acknowledge before resolve) but
    wait for nothing else of the incident, and nothing of the incident waits for them.
    """
    return f"{incident_id}/{provider}"


def paged_nobody(error: NotifierError) -> bool:
    """Whether a trigger that failed for good paged nobody at the provider: it refused the
    call (a routing or API key refused, a payload refused: HTTP 4xx). Not a timeout (408, or
    no answer) nor a 5xx or 429, which are retried and may have paged someone; not a failure
    of the bot's own before any call (a provider no longer configured)."""
    code = error.error_code or ""
    return not error.retryable and code.startswith("http_4") and code != "http_408"


def _name(provider: str) -> str:
    return PROVIDER_NAMES.get(provider, provider)


class PagingService:
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

    # -- delivery (outbox handlers) --------------------------------------------------------

    async def _incident(self, incident_id: str) -> Incident | None:
        async with self.store.transaction() as tx:
            return await incidents.get(tx, incident_id)

    def alert_for(self, incident: Incident, level: int) -> Alert:
        """What the provider is told: plain facts, the incident's ID as the dedup key."""
        channel = incident.channel_id or self.policy.announce_channel
        details = {"status": incident.status.value, "declared_by": incident.declared_by}
        if incident.impact:
            details["impact"] = incident.impact
        if incident.services:
            details["services"] = ", ".join(incident.services)
        drill = "[DRILL] " if incident.drill else ""
        if incident.drill:
            details["drill"] = "a practice incident: nothing is broken"
        return Alert(
            incident_id=incident.id,
            title=drill + incident.title,
            severity=incident.severity,
            summary=f"{drill}{incident.id} ({incident.severity.value}): {incident.title}",
            link=f"https://slack.com/app_redirect?channel={channel}",
            level=level,
            details=details,
        )

    async def _deliver(self, effect: Effect) -> None:
        provider = effect.payload["provider"]
        pager = self.pagers.get(provider)
        if pager is None:
            raise NotifierError(f"{_name(provider)} is not configured", retryable=False)
        incident = await self._incident(effect.payload["incident_id"])
        if incident is None:
            return
        try:
            if effect.kind == TRIGGER:
                # A page an acknowledgement or a resolution overtook wakes nobody, unless
                # someone asked for it by hand.
                wanted = effect.payload.get("acknowledged") or effect.payload.get("by_hand")
                if not incident.is_open or (incident.acknowledged_at is not None and not wanted):
                    return
                await pager.trigger(self.alert_for(incident, int(effect.payload.get("level", 1))))
            elif effect.kind == ACKNOWLEDGE:
                await pager.acknowledge(incident.id)
            else:
                await pager.resolve(incident.id)
        except NotifierError as exc:
            if exc.retryable:
                await self._outage(incident.id, provider, exc)
            raise
        await self._recovered(incident.id, provider)

    async def _outage(self, incident_id: str, provider: str, error: NotifierError) -> None:
        """Tell the incident channel, once per outage, that the provider is not answering."""
        code = error.error_code or "error"
        text = (
            f"{_name(provider)} could not be reached ({code.replace('_', ' ')}): the bot keeps"
            " trying until it answers; the Slack pages go out regardless"
        )
        async with self.changes.begin() as change:
            incident = await change.lock(incident_id)
            if not await storage.mark_outage(change.tx, incident.id, provider, change.now, code):
                return
            await self._tell(change, incident, provider, "paging_failed", text, f"retrying: {code}")

    async def _recovered(self, incident_id: str, provider: str) -> None:
        async with self.changes.begin() as change:
            incident = await change.lock(incident_id)
            if await storage.clear_outage(change.tx, incident.id, provider):
                text = f"{_name(provider)} answers again: what was waiting has been sent"
                await self._tell(change, incident, provider, "paging_recovered", text, "ok")

    async def _failed(self, effect: Effect, error: NotifierError) -> None:
        """A call the provider refused for good: on the timeline and in the channel; a
        level's page it refused, paging nobody, as that level's (`refused_pages`)."""
        provider = effect.payload["provider"]
        verb = _VERBS.get(effect.kind, effect.kind)
        code = error.error_code or "error"
        page = effect.payload.get("page")
        if effect.kind == TRIGGER and page and self.refused_pages and paged_nobody(error):
            incident_id = str(effect.payload["incident_id"])
            try:
                await self.refused_pages.provider_refused(
                    page,
                    incident_id,
                    provider,
                    code,
                    told=await self._refusal_told(incident_id, provider, code, page),
                )
            except NotFound:
                pass
            return
        text = (
            f"{_name(provider)} refused to {verb} ({code.replace('_', ' ')}); check the"
            " `paging:` settings. The Slack pages stand"
        )
        # A reopening's own trigger refused: kept so that a level's page refused the same
        # way in the escalation this reopening started is not told again (`_refusal_told`).
        refused = {"refused": code} if effect.payload.get("reopened") else {}
        async with self.changes.begin() as change:
            try:
                incident = await change.lock(effect.payload["incident_id"])
            except NotFound:
                return
            await self._tell(
                change, incident, provider, "paging_failed", text, f"failed: {code}", refused
            )

    async def _refusal_told(
        self, incident_id: str, provider: str, code: str, page: Mapping[str, Any]
    ) -> bool:
        """Whether the channel was told already that `provider` refused, for `code`, the
        reopening that started the page's escalation: its own trigger, queued first in the
        provider's lane. A wrong key was then told twice, for one reopening."""
        anchor = page.get("anchor")
        if anchor is None:
            return False
        async with self.store.transaction() as tx:
            lines = await incidents.timeline_tail(
                tx, incident_id, limit=20, kinds=("paging_failed",)
            )
        return any(
            line.at.timestamp() >= float(anchor)
            and line.data.get("provider") == provider
            and line.data.get("refused") == code
            for line in lines
        )

    async def _tell(
        self,
        change: Change,
        incident: Incident,
        provider: str,
        kind: str,
        text: str,
        outcome: str,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        notice = {"kind": kind, "text": text, "actor": SYSTEM.user_id}
        await change.record(
            incident.id,
            actor=SYSTEM.user_id,
            kind=kind,
            text=text,
            action=f"paging.{kind.removeprefix('paging_')}",
            args={"provider": provider},
            data={"provider": provider, **(data or {})},
            outcome=outcome,
            effects=[Queued(NOTICE, notice)],
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
