"""Silence from Slack: the alerts of one thread message silenced in Alertmanager (API v2).

One silence per alert name and service in the batch, its matchers the labels every alert of
that name and service shares (as Alertmanager's own commonLabels), all equality matchers; it
ends by itself after `silence_for`. Made before it is recorded: the record (timeline line,
audit entry, the line in the channel) commits only once Alertmanager has answered with the
silence's ID, and a batch already silenced is not silenced twice. When Alertmanager fails
part way through a click, the silences it made are recorded all the same and the rest are
left to the next click.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from bot import outbox, refs
from bot.alerts import alertmanager, silence_records, storage
from bot.alerts.alertmanager import AlertmanagerUnanswered, AlertmanagerUnavailable
from bot.alerts.matchers import matcher_sets, matchers_of, outside, silenceable
from bot.alerts.storage import StoredAlert
from bot.coordination import Coordinator, LocalCoordinator
from bot.durations import humanize_seconds
from bot.errors import (
    Conflict,
    CoordinatorUnavailable,
    NotFound,
    PermissionDenied,
    StoreBusy,
    StoreUnavailable,
)
from bot.incidents.changes import Change, IncidentChanges, Queued
from bot.incidents.effects import NOTICE
from bot.incidents.queries import well_formed_id
from bot.models import SYSTEM, Actor
from bot.permissions import Permissions
from bot.policy.alerts import AlertsConfig

log = logging.getLogger(__name__)

REFRESH_BATCH = "alerts.refresh"  # a batch's message shown as it stands (silenced or not)


@dataclass(frozen=True, slots=True)
class EndedEarly:
    """A silence made from Slack that Alertmanager says has ended before its recorded end
    (expired by hand in its UI or API)."""

    silence_id: str
    ended_at: datetime
    planned_end: datetime


@dataclass(frozen=True, slots=True)
class Silenced:
    incident_id: str
    silence_ids: tuple[str, ...]
    alerts: int
    ends_at: datetime
    changed: bool = True
    ended_early: tuple[EndedEarly, ...] = ()
    # False: the record says they run, but Alertmanager could not be asked to confirm it.
    confirmed: bool = True
    left_out: int = 0  # alerts past the first MAX_SILENCES names and services: not silenced
    # Alertmanager failed part way (why): `alerts` were silenced, not `unsilenced`' names.
    failed: str = ""
    unsilenced: tuple[StoredAlert, ...] = ()


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%H:%M UTC")


class SilenceService:
    """Creates Alertmanager silences for the alerts of a batch, on a responder's click."""

    def __init__(
        self,
        *,
        config: AlertsConfig,
        changes: IncidentChanges,
        permissions: Permissions,
        coordinator: Coordinator | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.config = config
        self.changes = changes
        self.permissions = permissions
        self.coordinator = coordinator or LocalCoordinator()
        self.timeout = timeout

    def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))

    async def silence(
        self, incident_id: str, batch: int, actor: Actor, *, request_id: str | None = None
    ) -> Silenced:
        """Silence the batch's firing alerts for `silence_for`; audited, on the timeline.

        Silences recorded as running are first checked in Alertmanager: one ended there by
        hand is recorded as ended (a timeline line) and made again; the answer says so.
        PermissionDenied (not a responder), NotFound (no such batch), Conflict when there is
        nothing to silence, AlertmanagerUnavailable when it cannot be reached or refuses."""
        if not actor.is_system and not await self.permissions.allows(actor, "responders"):
            raise PermissionDenied("Only responders may silence alerts.")
        url = self.config.alertmanager_url
        if url is None:
            raise Conflict("No Alertmanager is configured (alerts.alertmanager_url).")
        incident_id = well_formed_id(incident_id)
        # One click at a time per batch, on every replica: two at once (a double click, two
        # responders) each found nothing recorded and each made a silence.
        key, value = f"alerts.silence:{incident_id}:{batch}", uuid.uuid4().hex
        try:
            held = await self.coordinator.hold(key, value, self.timeout * 4 + 30)
        except CoordinatorUnavailable as exc:
            log.warning("silencing %s:%s unshared with other replicas: %s", incident_id, batch, exc)
            return await self._silence(incident_id, batch, actor, url, request_id)
        if held is not None:
            raise Conflict(
                "Another click is silencing these alerts right now: its answer and its line"
                " on the timeline follow in a moment."
            )
        try:
            return await self._silence(incident_id, batch, actor, url, request_id)
        finally:
            with contextlib.suppress(CoordinatorUnavailable):  # its TTL frees it
                await self.coordinator.release(key, value)

    async def _silence(
        self, incident_id: str, batch: int, actor: Actor, url: str, request_id: str | None
    ) -> Silenced:
        store = self.changes.store
        now = self.changes.clock.now()
        async with store.transaction() as tx:
            alerts = await storage.batch_alerts(tx, incident_id, batch)
            recorded = await silence_records.silenced_batch(tx, incident_id, batch, now)
            # Found in Alertmanager, these are no silence made unanswered: it is known.
            known = await silence_records.batch_silence_ids(tx, incident_id, batch)
        # At most MAX_SILENCES a click: the alerts of the others are not silenced.
        taken, left_out = silenceable(alerts)
        if not alerts:
            raise NotFound(f"{incident_id} has no such batch of alerts.")
        common = matcher_sets(taken, self.config.service_label)
        sets = [matchers_of(labels) for labels in common]
        if not sets and not recorded:
            raise Conflict("None of these alerts came from Alertmanager: nothing to silence.")
        running: dict[str, tuple[list[dict[str, Any]], datetime]] = {}
        ended: list[EndedEarly] = []
        if recorded:
            async with self._session() as session:
                try:
                    states = [
                        await alertmanager.state(session, url, r.silence_id) for r in recorded
                    ]
                except AlertmanagerUnavailable:
                    # Said as the record has it, and that Alertmanager could not confirm it.
                    last = max(r.ends_at for r in recorded)
                    ids = tuple(r.silence_id for r in recorded)
                    return Silenced(
                        incident_id, ids, len(alerts), last, changed=False, confirmed=False
                    )
            for silence, (active, end) in zip(recorded, states, strict=True):
                if active:
                    running[silence.silence_id] = (silence.matchers, end)
                else:
                    ended.append(EndedEarly(silence.silence_id, min(end, now), silence.ends_at))
        covered = [matchers for matchers, _ in running.values()]
        missing = [matchers for matchers in sets if matchers not in covered]
        if not missing and running and not ended:
            last = max(end for _, end in running.values())
            return Silenced(incident_id, tuple(running), len(taken), last, False, left_out=left_out)
        ends_at = now + timedelta(seconds=self.config.silence_for.seconds)
        # The marker a silence of this batch carries, before the name (the comment is cut).
        marker = f"Silenced from Slack for {incident_id} (batch {batch}) by "
        comment = marker + (actor.user_name or actor.user_id)
        created: list[tuple[str, list[dict[str, Any]]]] = []
        # A silence found made already (an earlier request timed out after Alertmanager
        # made it) is recorded with its own end, not made twice.
        ends: dict[str, datetime] = {}
        failed: AlertmanagerUnavailable | None = None
        unsure = False  # a request went unanswered and Alertmanager could not then be asked
        async with self._session() as session:
            try:  # one made by a click whose answer never came
                standing = (
                    []
                    if not missing
                    else await alertmanager.find(session, url, missing, marker, known)
                )
            except AlertmanagerUnavailable as exc:
                raise AlertmanagerUnavailable(f"{exc} Nothing was silenced.") from None
            for matchers in missing:
                made = [f for f in standing if f.matchers == matchers]
                if not made:
                    try:
                        created.append(
                            await alertmanager.create(session, url, matchers, now, ends_at, comment)
                        )
                        continue
                    except AlertmanagerUnanswered as exc:
                        # It may have been made all the same: ask before saying either way.
                        failed = exc
                        try:
                            made = await alertmanager.find(session, url, [matchers], marker, known)
                        except AlertmanagerUnavailable:
                            unsure = True
                            break
                        if not made:
                            break
                        failed = None
                    except AlertmanagerUnavailable as exc:
                        failed = exc
                        break
                created.append((made[0].silence_id, matchers))
                ends[made[0].silence_id] = made[0].ends_at
        if unsure and failed is not None:
            failed = AlertmanagerUnavailable(
                f"{failed} It may or may not have made the silence, and could not be asked"
                f" afterwards: check its silences at {url}/#/silences (made by"
                f' {alertmanager.CREATED_BY}, comment "{marker.strip()}"). A second click'
                " looks for it first and makes none twice."
            )
            if not created:
                raise failed
        if failed is not None and not created:
            raise AlertmanagerUnavailable(f"{failed} Nothing was silenced.")
        # Failing part way, the silences made are recorded all the same (else the next
        # click makes them twice) and the message keeps its button for the rest.
        unsilenced = [] if failed is None else outside(taken, common, sets, covered, created)
        count = len(taken) - len(unsilenced)
        # The timeline counts what this click silenced, not what silences running covered.
        before = len(taken) - len(outside(taken, common, sets, covered, []))
        try:
            await self._record(
                incident_id,
                batch,
                actor,
                request_id,
                ended,
                created,
                count - before,
                now,
                failed,
                ends,
            )
        except (StoreUnavailable, StoreBusy):
            # Unrecorded, they would run unseen (no line, no end on the message) while the
            # clicker is told nothing changed, and the next click would make them again.
            async with self._session() as session:
                left = await alertmanager.expire(session, url, [s for s, _ in created])
            if left:  # "nothing was changed" would be untrue
                raise AlertmanagerUnavailable(
                    f"The database could not record the silences made ({', '.join(left)}),"
                    f" and Alertmanager would not expire them: they run until"
                    f" {_utc(ends_at)} unless expired there by hand."
                ) from None
            raise
        ids = tuple(running) + tuple(s for s, _ in created)
        made_ends = [ends.get(s, ends_at) for s, _ in created]
        last = max([end for _, end in running.values()] + (made_ends or [now]))
        return Silenced(
            incident_id,
            ids,
            count,
            last,
            changed=bool(created),
            ended_early=tuple(ended),
            left_out=left_out,
            failed="" if failed is None else str(failed),
            unsilenced=tuple(unsilenced),
        )

    async def _record(
        self,
        incident_id: str,
        batch: int,
        actor: Actor,
        request_id: str | None,
        ended: list[EndedEarly],
        created: list[tuple[str, list[dict[str, Any]]]],
        count: int,
        now: datetime,
        failed: AlertmanagerUnavailable | None,
        ends: dict[str, datetime],
    ) -> None:
        async with self.changes.begin(request_id=request_id) as change:
            await change.lock(incident_id)
            if ended:
                await self._record_ended(change, incident_id, batch, ended)
            if created:
                await self._record_created(
                    change,
                    incident_id,
                    batch,
                    actor,
                    created,
                    count,
                    now,
                    ends,
                    whole=failed is None,
                )

    async def _record_ended(
        self, change: Change, incident_id: str, batch: int, ended: list[EndedEarly]
    ) -> None:
        for silence in ended:
            await silence_records.set_silence_end(change.tx, silence.silence_id, silence.ended_at)
        first = ended[0]
        line = (
            f"Alertmanager says the silence{'s' if len(ended) != 1 else ''} made from Slack"
            f" ({', '.join(s.silence_id for s in ended)}) ended at {_utc(first.ended_at)},"
            f" before the planned end at {_utc(first.planned_end)}: ended by hand in Alertmanager."
        )
        await change.record(
            incident_id,
            actor=SYSTEM.user_id,
            kind="alerts_silence_ended",
            text=line,
            action="alerts.silence_ended",
            args={
                "batch": batch,
                "silences": [s.silence_id for s in ended],
                "ended_at": [s.ended_at.isoformat() for s in ended],
            },
            effects=[
                Queued(NOTICE, {"kind": "alerts_silence_ended", **refs.notice_payload((line,))}),
                Queued(REFRESH_BATCH, {"batch": batch}),  # its Silence button back
            ],
        )

    async def _record_created(
        self,
        change: Change,
        incident_id: str,
        batch: int,
        actor: Actor,
        created: list[tuple[str, list[dict[str, Any]]]],
        count: int,
        now: datetime,
        ends: dict[str, datetime],
        *,
        whole: bool = True,
    ) -> None:
        ends_at = now + timedelta(seconds=self.config.silence_for.seconds)
        line = refs.text(
            f"Silenced {count} alert{'s' if count != 1 else ''} in"
            f" Alertmanager for {humanize_seconds(self.config.silence_for.seconds)} by ",
            refs.Person(actor.user_id),
        )
        for silence_id, matchers in created:
            # One found made by an earlier, unanswered request runs to its own end.
            end = ends.get(silence_id, ends_at)
            await silence_records.add_silence(
                change.tx, silence_id, incident_id, batch, matchers, actor.user_id, now, end
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
            effects=[
                Queued(NOTICE, {"kind": "alerts_silenced", **refs.notice_payload(line)}),
                # The message says until when, with no second button while it holds...
                *([Queued(REFRESH_BATCH, {"batch": batch})] if whole else []),
            ],
        )
        # ...and offers it again once the silence has run out (a lane of its own: the wait
        # holds up nothing else of the incident).
        await outbox.enqueue(
            change.tx,
            now,
            REFRESH_BATCH,
            {"incident": incident_id, "batch": batch},
            lane=f"{incident_id}/alerts-silence-end",
            delay=self.config.silence_for.seconds + 1,
        )
