"""Silence from Slack: the alerts of one thread message silenced in Alertmanager (API v2).

One silence per alert name in the batch, its matchers the labels every alert of that name
shares (as Alertmanager's own commonLabels), all equality matchers; it ends by itself after
`silence_for`. Made before it is recorded: the record (timeline line, audit entry, the
line in the channel) commits only once Alertmanager has answered with the silence's ID, and
a batch already silenced is not silenced twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from bot import refs
from bot.alerts import storage
from bot.alerts.storage import StoredAlert
from bot.durations import humanize_seconds
from bot.errors import Conflict, NotFound, PermissionDenied
from bot.incidents.changes import IncidentChanges, Queued
from bot.incidents.effects import NOTICE
from bot.incidents.queries import well_formed_id
from bot.models import Actor
from bot.permissions import Permissions
from bot.policy.alerts import AlertsConfig
from bot.redact import redact_text

log = logging.getLogger(__name__)

SILENCES_PATH = "/api/v2/silences"
_MAX_SILENCES = 20


class AlertmanagerUnavailable(Conflict):
    """Alertmanager refused or did not answer: nothing was silenced (the message says why)."""


@dataclass(frozen=True, slots=True)
class Silenced:
    incident_id: str
    silence_ids: tuple[str, ...]
    alerts: int
    ends_at: datetime
    changed: bool = True


def matcher_sets(alerts: list[StoredAlert]) -> list[dict[str, str]]:
    """Per alert name, the labels all its alerts share (at most 20 sets)."""
    by_name: dict[str, list[dict[str, str]]] = {}
    for alert in alerts:
        by_name.setdefault(alert.name, []).append(alert.labels)
    sets = []
    for labels in by_name.values():
        common = dict(labels[0])
        for other in labels[1:]:
            common = {k: v for k, v in common.items() if other.get(k) == v}
        if common:
            sets.append(common)
    return sets[:_MAX_SILENCES]


class SilenceService:
    """Creates Alertmanager silences for the alerts of a batch, on a responder's click."""

    def __init__(
        self,
        *,
        config: AlertsConfig,
        changes: IncidentChanges,
        permissions: Permissions,
        timeout: float = 10.0,
    ) -> None:
        self.config = config
        self.changes = changes
        self.permissions = permissions
        self.timeout = timeout

    async def silence(
        self, incident_id: str, batch: int, actor: Actor, *, request_id: str | None = None
    ) -> Silenced:
        """Silence the batch's firing alerts for `silence_for`; audited, on the timeline.

        PermissionDenied (not a responder), NotFound (no such batch), Conflict when there is
        nothing to silence, AlertmanagerUnavailable when it cannot be reached or refuses."""
        if not actor.is_system and not await self.permissions.allows(actor, "responders"):
            raise PermissionDenied("Only responders may silence alerts.")
        url = self.config.alertmanager_url
        if url is None:
            raise Conflict("No Alertmanager is configured (alerts.alertmanager_url).")
        incident_id = well_formed_id(incident_id)
        store = self.changes.store
        now = self.changes.clock.now()
        async with store.transaction() as tx:
            alerts = await storage.batch_alerts(tx, incident_id, batch)
            done, running_until = await storage.silenced_batch(tx, incident_id, batch, now)
        if done and running_until is not None:
            return Silenced(incident_id, tuple(done), len(alerts), running_until, changed=False)
        ends_at = now + timedelta(seconds=self.config.silence_for.seconds)
        silenceable = [a for a in alerts if a.source == "alertmanager"]
        if not alerts:
            raise NotFound(f"{incident_id} has no such batch of alerts.")
        sets = matcher_sets(silenceable)
        if not sets:
            raise Conflict("None of these alerts came from Alertmanager: nothing to silence.")
        comment = f"Silenced from Slack for {incident_id} by {actor.user_name or actor.user_id}"
        created = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as s:
            for labels in sets:
                created.append(await self._create(s, url, labels, now, ends_at, comment))
        line = refs.text(
            f"Silenced {len(silenceable)} alert{'s' if len(silenceable) != 1 else ''} in"
            f" Alertmanager for {humanize_seconds(self.config.silence_for.seconds)} by ",
            refs.Person(actor.user_id),
        )
        async with self.changes.begin(request_id=request_id) as change:
            await change.lock(incident_id)
            for silence_id, matchers in created:
                await storage.add_silence(
                    change.tx, silence_id, incident_id, batch, matchers, actor.user_id, now, ends_at
                )
            await change.record(
                incident_id,
                actor=actor.user_id,
                kind="alerts_silenced",
                text=line,
                action="alerts.silence",
                args={
                    "batch": batch,
                    "silences": [silence_id for silence_id, _ in created],
                    "matchers": [m for _, m in created],
                    "ends_at": ends_at.isoformat(),
                },
                effects=[Queued(NOTICE, {"kind": "alerts_silenced", **refs.notice_payload(line)})],
            )
        return Silenced(
            incident_id, tuple(s for s, _ in created), len(silenceable), ends_at, changed=True
        )

    async def _create(
        self,
        session: aiohttp.ClientSession,
        url: str,
        labels: dict[str, str],
        now: datetime,
        ends_at: datetime,
        comment: str,
    ) -> tuple[str, list[dict[str, Any]]]:
        matchers = [
            {"name": name, "value": value, "isRegex": False, "isEqual": True}
            for name, value in sorted(labels.items())
        ]
        body = {
            "matchers": matchers,
            "startsAt": now.isoformat(),
            "endsAt": ends_at.isoformat(),
            "createdBy": "chatops-bot",
            "comment": comment[:300],
        }
        try:
            async with session.post(url + SILENCES_PATH, json=body) as response:
                answer = await response.json(content_type=None)
                if response.status != 200 or not isinstance(answer, dict):
                    detail = redact_text(str(answer))[:200]
                    raise AlertmanagerUnavailable(
                        f"Alertmanager refused the silence (HTTP {response.status}): {detail}"
                    )
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise AlertmanagerUnavailable(
                f"Alertmanager could not be reached at {url}: {redact_text(str(exc))[:200]}"
                " Nothing was silenced."
            ) from None
        return str(answer["silenceID"]), matchers
