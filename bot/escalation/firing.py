"""What firing an escalation reminder means: pages, breach warnings, update and review
reminders. The engine (bot.reminders.firing) claims and locks; this handler decides.

- `planner.skip_reason` re-checks the incident (acknowledged? resolved? an older plan?).
- The notifications go into the outbox, with the timeline line and the audit entry, in the
  transaction that marks the reminder fired (`bot.incidents.changes`); the highest level
  paged and the breaches recorded are saved in the escalation state in that transaction.
- An unanswered update reminder repeats at the severity's cadence (the follow-up).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from bot import refs
from bot.durations import humanize_seconds
from bot.escalation import planner
from bot.escalation import storage as escalations
from bot.escalation.delivery import (
    BREACH,
    FANOUT_LANE,
    PAGE_DM,
    PAGE_FANOUT,
    PAGE_POST,
    REMIND,
    dm_lane,
)
from bot.escalation.extensions import ProviderPages
from bot.escalation.planner import EscalationState, ReminderKind
from bot.incidents.changes import Change, Queued
from bot.incidents.effects import REFRESH
from bot.models import SYSTEM, Actor, Incident, Severity
from bot.notify import Page
from bot.permissions import is_group
from bot.policy import Policy
from bot.policy.paging import PROVIDER_NAMES, PROVIDERS
from bot.reminders.kinds import Firing
from bot.reminders.model import Reminder, ReminderStatus
from bot.store import Tx
from bot.store.buffers import TxBuffer

# The page's payload a paging service's refusal is told and counted with (UnreachedPages).
_REFUSAL_KEYS = ("reminder_id", "level", "targets", "anchor", "by")

_BREACH_TARGET: dict[str, str] = {
    ReminderKind.ACK_BREACH: "acknowledge",
    ReminderKind.RESOLVE_BREACH: "resolve",
}


def _mentions(recipients: Sequence[str]) -> refs.Rich:
    def one(target: str) -> refs.Part:
        if target in PROVIDERS:
            return PROVIDER_NAMES[target]  # a paging service, by name
        return refs.person_or_group(target)

    parts: list[refs.Part] = []
    for target in recipients:
        parts += [" ", one(target)] if parts else [one(target)]
    return refs.text(*parts)


@dataclass
class _BatchStates:
    """The escalation states of a batch's incidents, read in one statement and written in
    one just before the commit (a batch may fire several reminders of one incident)."""

    prepared: set[str] = field(default_factory=set)
    read: dict[str, EscalationState] = field(default_factory=dict)
    changed: dict[str, EscalationState] = field(default_factory=dict)
    now: datetime | None = None  # the batch's clock, for the states written


async def _write_batch(tx: Tx, batch: _BatchStates) -> None:
    if batch.changed and batch.now is not None:
        await escalations.save_states(tx, list(batch.changed.values()), batch.now)


def _at_declaration(page: Page) -> bool:
    """Whether this is the first level's page fired in the transaction that declares the
    incident (scheduled, at the very time of its declaration)."""
    return page.level == 1 and not page.by and not page.waited and page.since == "declared"


def _announced(incident: Incident, page: Page) -> bool:
    """Whether the announcement carries this page (the first level's, fired as the incident
    is declared, in the announcement channel): then it has no post of its own, and a burst
    of declarations puts one message each in that channel, not two."""
    return (
        _at_declaration(page)
        and bool(incident.announced_page)
        and incident.announced_page == tuple(page.recipients)
    )


def _dms(payload: dict[str, Any], recipients: Sequence[str], *, own_lanes: bool) -> list[Queued]:
    """A page's DMs: one per person, queued with the page when it names people only, each in
    a lane of its own when `own_lanes`. A user group (read from Slack) or a paging service
    (who is on call now) is expanded by a fan-out effect of its own (in the fan-out lane when
    `own_lanes`), which queues the DMs when it runs."""
    if any(target in PROVIDERS or is_group(target) for target in recipients):
        return [Queued(PAGE_FANOUT, payload, lane=FANOUT_LANE if own_lanes else "")]
    people = dict.fromkeys(recipients)  # in order, each once
    return [
        Queued(PAGE_DM, {**payload, "user_id": user_id}, lane=dm_lane(user_id) if own_lanes else "")
        for user_id in people
    ]


class EscalationFiring:
    """The engine's handler for escalation's kinds (`planner.ReminderKind`)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        # Pages the paging services a level names (bot.paging); None: Slack only.
        self.provider_pages: ProviderPages | None = None
        self._batches: TxBuffer[_BatchStates] = TxBuffer(_BatchStates, _write_batch)

    async def prepare(
        self, change: Change, reminders: Sequence[Reminder], incidents: Mapping[str, Incident]
    ) -> None:
        """Read the states of a batch's incidents at once; `fire` then saves into the batch,
        written with one statement before the commit."""
        tx = change.tx
        ids = sorted({r.incident_id for r in reminders if r.incident_id in incidents})
        batch = self._batches.open(tx)
        batch.now = change.now
        unread = [i for i in ids if i not in batch.prepared]
        batch.read.update(await escalations.get_states(tx, unread))
        batch.prepared.update(unread)

    async def current_state(self, tx: Tx, incident_id: str) -> EscalationState | None:
        """The incident's escalation state as `tx` sees it, states held for its commit
        included (`hold_state`, a batch's)."""
        batch = self._batches.get(tx)
        if batch is None or incident_id not in batch.prepared:
            return await escalations.get_state(tx, incident_id)
        return batch.changed.get(incident_id) or batch.read.get(incident_id)

    def hold_state(self, tx: Tx, state: EscalationState, now: datetime) -> None:
        """Save `state` in `tx`: held and written once before the commit, so a page fired
        next in `tx` reads it from here rather than back from the database."""
        batch = self._batches.open(tx)
        batch.now = batch.now or now
        batch.prepared.add(state.incident_id)
        batch.changed[state.incident_id] = state

    async def _state(self, tx: Tx, incident: Incident) -> EscalationState | None:
        return await self.current_state(tx, incident.id)

    async def _save(self, tx: Tx, state: EscalationState, now: datetime) -> None:
        batch = self._batches.get(tx)
        if batch is None:
            await escalations.save_state(tx, state, now)
        else:
            batch.changed[state.incident_id] = state

    async def fire(self, change: Change, reminder: Reminder, incident: Incident | None) -> Firing:
        """Page, warn or remind for a claimed reminder; the incident row is locked."""
        if incident is None:
            return Firing(ReminderStatus.SKIPPED, "no incident")
        tx, now = change.tx, change.now
        state = await self._state(tx, incident) or planner.initial_state(incident)
        reason = planner.skip_reason(reminder, incident, state, now)
        if reason is not None:
            return Firing(ReminderStatus.SKIPPED, reason)
        new_state = state
        firing = Firing(ReminderStatus.FIRED, "reminded")
        if reminder.kind == ReminderKind.PAGE:
            targets = self._level_targets(incident.severity, reminder, state)
            waited = (now - state.anchor_at).total_seconds()
            page = Page(reminder.level, targets, waited=waited, since=state.started_by)
            await self.page(change, incident, reminder.id, page, anchor=state.anchor_at)
            new_state = replace(state, level=max(state.level, reminder.level))
            firing = Firing(ReminderStatus.FIRED, f"paged level {reminder.level}")
        elif reminder.kind in _BREACH_TARGET:
            new_state = await self._breach(change, reminder, incident, state)
            firing = Firing(ReminderStatus.FIRED, "breach recorded")
        elif reminder.kind == ReminderKind.UPDATE_DUE:
            await self._remind(change, reminder, incident)
            # Unanswered, it repeats at the cadence until an update re-plans it.
            follow_up = planner.next_update_reminder(reminder, incident, self.policy, now)
            firing = Firing(ReminderStatus.FIRED, "reminded", follow_up, plan=state.plan)
        else:
            await self._remind(change, reminder, incident)
        if new_state != state:
            await self._save(tx, new_state, now)
        return firing

    async def page(
        self,
        change: Change,
        incident: Incident,
        reminder_id: int,
        page: Page,
        *,
        anchor: datetime,
        actor: Actor = SYSTEM,
    ) -> None:
        """Record a page and queue its post and its DMs (scheduled, or by hand); `anchor` is
        its escalation's start (declaration or reopening)."""
        # A DM names the incident channel: while the war room is still to be opened, the DMs
        # wait for it in the incident's lane; otherwise each goes in its own (dm_lane).
        own = incident.channel_id is not None or not self.policy.has_war_room(incident.severity)
        payload = {
            "reminder_id": reminder_id,
            "level": page.level,
            "targets": list(page.recipients),  # the stored key, kept
            "waited": page.waited,
            "by": page.by,
            "reason": page.reason,
            "since": page.since,
            "acknowledged": incident.acknowledged_at is not None,
            # A reopening starts another escalation: this page is withdrawn then (delivery).
            "anchor": anchor.timestamp(),
            # The incident as paged: unchanged at delivery, it cannot have been reopened since.
            "version": incident.version,
        }
        text = refs.text(f"Paged level {page.level}: ", *_mentions(page.recipients))
        if page.by:
            # The reason ends the line: it is the person's words (TimelineEvent.said).
            text = refs.text(
                *text,
                ", escalated by ",
                refs.Person(page.by),
                f": {page.reason}" if page.reason else "",
            )
        elif page.waited:
            text = refs.text(*text, f" (not acknowledged after {humanize_seconds(page.waited)})")
        elif page.reason:
            text = refs.text(*text, f" ({page.reason})")  # ours: a level reached nobody
        else:
            text = refs.text(
                *text, " (on declaration)" if page.since == "declared" else " (on reopening)"
            )
        await change.record(
            incident.id,
            kind="paged",
            text=text,
            said=page.reason if page.by else "",
            action="escalation.page",
            actor=actor.user_id,
            args={"level": page.level, "targets": list(page.recipients), "reason": page.reason},
            data={"reminder_id": reminder_id, "level": page.level},
            effects=[
                *([] if _announced(incident, page) else [Queued(PAGE_POST, payload)]),
                *_dms(payload, page.recipients, own_lanes=own),
                # The cards show the level paged, which their Escalate button carries; the
                # cards of an incident being declared are still to be posted, showing it.
                *([] if _at_declaration(page) else [Queued(REFRESH, {"kind": "paged"})]),
            ],
        )
        providers = [target for target in page.recipients if target in PROVIDERS]
        if providers and self.provider_pages is not None:
            await self.provider_pages.page(
                change,
                incident,
                providers,
                page.level,
                acknowledged=incident.acknowledged_at is not None,
                by_hand=bool(page.by),
                # What a refusal needs to count as the level's (bot.escalation.unreached).
                page={key: payload[key] for key in _REFUSAL_KEYS},
            )

    def _level_targets(
        self, severity: Severity, reminder: Reminder, state: EscalationState
    ) -> tuple[str, ...]:
        if reminder.level <= state.level and reminder.notify:
            # A level already reached, paged again after a raise of the severity: only the
            # people the old severity did not name (planner.catch_up_pages).
            return reminder.notify
        # Whoever the policy names now (the rota may have changed since planning).
        levels = self.policy.levels(severity)
        if 1 <= reminder.level <= len(levels):
            return tuple(levels[reminder.level - 1].notify)
        return reminder.notify

    async def _breach(
        self,
        change: Change,
        reminder: Reminder,
        incident: Incident,
        state: EscalationState,
    ) -> EscalationState:
        target = _BREACH_TARGET[reminder.kind]
        times = self.policy.response_times(incident.severity)
        within = times.ack_within if target == "acknowledge" else times.resolve_within
        warning = {
            "reminder_id": reminder.id,
            "target": target,
            "within": str(within),
            "due_at": reminder.due_at.timestamp(),
        }
        verb = "acknowledged" if target == "acknowledge" else "resolved"
        await change.record(
            incident.id,
            actor=SYSTEM.user_id,
            kind="target_breached",
            text=f"Not {verb} within {within} ({incident.severity} target): target breached",
            action="escalation.breach",
            args={"target": target, "within": str(within), "due_at": reminder.due_at.isoformat()},
            data={"reminder_id": reminder.id, "target": target},
            effects=[Queued(BREACH, warning)],
        )
        if target == "acknowledge":
            return replace(state, ack_breached_at=change.now)
        return replace(state, resolve_breached_at=change.now)

    async def _remind(self, change: Change, reminder: Reminder, incident: Incident) -> None:
        # The lead by direct message; an incident nobody leads (the bot declared it) is
        # reminded in its channel, to the first escalation level's Slack targets.
        user_id = incident.lead
        levels = self.policy.levels(incident.severity)
        on_call = levels[0].slack_targets if user_id is None and levels else []
        whom = (
            refs.text(refs.Person(user_id))
            if user_id
            else refs.text(*_mentions(on_call), " in the incident channel")
        )
        if reminder.kind == ReminderKind.UPDATE_DUE:
            every = self.policy.response_times(incident.severity).update_every
            within = str(every) if every else ""
            text = refs.text("Reminded ", *whom, " that a status update is due")
        else:
            reviews = self.policy.reviews
            preliminary = reminder.kind == ReminderKind.PRELIMINARY_REVIEW
            within = str(reviews.preliminary_within if preliminary else reviews.formal_within)
            name = "preliminary" if preliminary else "formal"
            text = refs.text("Reminded ", *whom, f" that the {name} review is due ({within} after)")
        reminder_payload = {
            "reminder_id": reminder.id,
            "kind": str(reminder.kind),
            "user_id": user_id,
            "mentions": on_call,
            "due_at": reminder.due_at.timestamp(),
            "within": within,
        }
        await change.record(
            incident.id,
            actor=SYSTEM.user_id,
            kind="reminded",
            text=text,
            action=f"escalation.{reminder.kind}",
            args={
                **({"user": user_id} if user_id else {"mentions": on_call}),
                "due_at": reminder.due_at.isoformat(),
            },
            data={"reminder_id": reminder.id, "reminder": str(reminder.kind)},
            effects=[Queued(REMIND, reminder_payload)],
        )
