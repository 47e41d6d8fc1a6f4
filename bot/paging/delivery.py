"""Delivering the paging services' calls, as outbox handlers: trigger, acknowledge and
resolve sent to the provider; its outage told once in the incident channel and its recovery
too; a call refused for good on the timeline, a level's page refused as that level's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.errors import NotFound, NotifierError
from bot.incidents import storage as incidents
from bot.incidents.changes import Change, IncidentChanges, Queued
from bot.incidents.effects import NOTICE
from bot.models import SYSTEM, Incident
from bot.outbox import Effect
from bot.paging import storage
from bot.paging.ports import Alert, Pager, RefusedPages
from bot.policy import Policy
from bot.policy.paging import PROVIDER_NAMES
from bot.store import Store

TRIGGER = "paging.trigger"
ACKNOWLEDGE = "paging.acknowledge"
RESOLVE = "paging.resolve"
_VERBS = {TRIGGER: "page", ACKNOWLEDGE: "acknowledge", RESOLVE: "resolve"}


def paged_nobody(error: NotifierError) -> bool:
    """Whether a trigger that failed for good paged nobody at the provider: it refused the
    call (a routing or API key refused, a payload refused: HTTP 4xx). Not a timeout (408, or
    no answer) nor a 5xx or 429, which are retried and may have paged someone; not a failure
    of the bot's own before any call (a provider no longer configured)."""
    code = error.error_code or ""
    return not error.retryable and code.startswith("http_4") and code != "http_408"


def _name(provider: str) -> str:
    return PROVIDER_NAMES.get(provider, provider)


class PagingDelivery:
    """The outbox handlers of PagingService (bot.paging.service), which sets these."""

    policy: Policy
    store: Store
    changes: IncidentChanges
    pagers: dict[str, Pager]
    refused_pages: RefusedPages | None

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
