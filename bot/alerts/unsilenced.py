"""Alertmanager notifying of an alert a silence made from Slack should hold.

Alertmanager notifies of no silenced alert: a firing notification for an alert whose batch
has a silence running by the record means that silence has ended (expired in Alertmanager by
hand, between two clicks) or never matched. It is recorded as ended at once, on the
incident's timeline, and the batch's message offers Silence again (bot.alerts.delivery),
rather than the bot learning it only at the next click.
"""

from __future__ import annotations

import re
from datetime import UTC, timedelta
from typing import Any

from bot import refs
from bot.alerts import silence_records
from bot.alerts.silence_records import SilencedAlert
from bot.alerts.silences import REFRESH_BATCH
from bot.incidents.changes import Change, IncidentChanges, Queued
from bot.incidents.effects import NOTICE
from bot.models import SYSTEM

# A notification Alertmanager sent (or retried) just before a silence was made is no sign
# that the silence ended.
SETTLE = timedelta(seconds=60)


def matched(matchers: list[dict[str, Any]], labels: dict[str, str]) -> bool:
    """Whether Alertmanager would match `labels` with `matchers` (as matchers_of makes
    them: equality, or a regex Alertmanager anchors, which Python reads alike)."""
    for matcher in matchers:
        value = labels.get(str(matcher["name"]), "")
        if matcher.get("isRegex"):
            try:
                hit = re.fullmatch(str(matcher["value"]), value) is not None
            except re.error:  # not one of ours: say nothing of it
                return False
        else:
            hit = value == matcher["value"]
        if hit != bool(matcher.get("isEqual", True)):
            return False
    return True


async def notified_while_silenced(changes: IncidentChanges, resent: set[tuple[str, str]]) -> None:
    """Alertmanager notified of firing alerts (`resent`, by fingerprint and start) that a
    silence made from Slack holds by the record: Alertmanager notifies of no silenced alert,
    so that silence has ended (expired there by hand) or never matched. Each is recorded as
    ended now, on the incident's timeline, and its batch's message offers Silence again:
    once, as the record no longer says it runs."""
    now = changes.clock.now()
    async with changes.store.snapshot() as tx:
        # Alertmanager's own alerts only: the same labels from Grafana are another alert.
        candidates = await silence_records.silenced_by_record(
            tx, "alertmanager", [fingerprint for fingerprint, _ in resent], now, now - SETTLE
        )
    found = [
        c
        for c in candidates
        if (c.alert.fingerprint, c.starts_at) in resent and matched(c.matchers, c.alert.labels)
    ]
    by_batch: dict[tuple[str, int], list[SilencedAlert]] = {}
    for item in found:
        by_batch.setdefault((item.alert.incident_id or "", item.batch), []).append(item)
    for (incident_id, batch), items in sorted(by_batch.items()):
        async with changes.begin() as change:
            await change.lock(incident_id)
            await _record_unsilenced(change, incident_id, batch, items)


async def _record_unsilenced(
    change: Change, incident_id: str, batch: int, items: list[SilencedAlert]
) -> None:
    running = {
        s.silence_id
        for s in await silence_records.silenced_batch(change.tx, incident_id, batch, change.now)
    }
    ended = sorted({i.silence_id for i in items if i.silence_id in running})
    if not ended:
        return  # another replica (or a click) recorded it first
    for silence_id in ended:
        await silence_records.set_silence_end(change.tx, silence_id, change.now)
    alert_names = list(dict.fromkeys(i.alert.name for i in items))
    shown = ", ".join(n[:80] for n in alert_names[:5])
    shown += f" and {len(alert_names) - 5} more" if len(alert_names) > 5 else ""
    planned = max(i.ends_at for i in items).astimezone(UTC).strftime("%H:%M UTC")
    head = (
        f"Alertmanager notified of firing alerts again, though the silence"
        f"{'s' if len(ended) != 1 else ''} made from Slack ({', '.join(ended)}) should hold"
        f" them until {planned}: ended in Alertmanager, or never matched. Silence is offered"
        " again on their message: "
    )
    line = refs.text(head, shown)
    notice = head.removesuffix(": ") + "."  # without the monitor's words
    await change.record(
        incident_id,
        actor=SYSTEM.user_id,
        kind="alerts_silence_ended",
        text=line,
        said=shown,  # a monitor's words: text, never markup
        action="alerts.silence_ended",
        args={"batch": batch, "silences": ended, "notified": True},
        effects=[
            Queued(NOTICE, {"kind": "alerts_silence_ended", **refs.notice_payload((notice,))}),
            Queued(REFRESH_BATCH, {"batch": batch}),
        ],
    )
