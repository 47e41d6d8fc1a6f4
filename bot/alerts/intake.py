"""Alerts in, recorded at once: what the HTTP handler waits for before its 200.

One short transaction per post, whatever it holds: the occurrences already recorded are read
in one query; new firing alerts are inserted (a few multi-row statements) as `pending`, their
decision left to AlertService's worker; a resolution marks its firing record resolved and
`resolution_pending`, as does a later start of the same fingerprint (its earlier occurrence
has ended); a generic resolution naming no start resolves its key's firing occurrence. An
occurrence is unique by (source, fingerprint, starts_at) in the database, so a resend, a
retry or the other replica's copy inserts nothing twice (`ON CONFLICT DO NOTHING`), and the
same labels from two monitors (fingerprints computed from the labels alone) are two alerts.
What incidents the alerts open or join is decided after the answer, never on its path: a storm
of posts is acknowledged at the pace of inserts, not of declarations.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bot import metrics
from bot.alerts import storage
from bot.alerts.models import FIRING, NO_START, RESOLVED, Alert
from bot.alerts.routing import Routed, route
from bot.clock import Clock
from bot.policy.alerts import AlertsConfig
from bot.store import Store

PENDING = "pending"  # recorded, its incident not decided yet


@dataclass
class Receipt:
    """What one post did, by outcome: new (firing, to be decided), resolved, recorded (a
    resolution never seen firing), ignored (a route said so), duplicate (seen before)."""

    outcomes: Counter[str] = field(default_factory=Counter)
    superseded: int = 0  # earlier occurrences a new start ended (the worker tells them)
    # Alertmanager's firing alerts already recorded firing, by (fingerprint, starts_at): a
    # silence of theirs that runs by the record has ended (bot.alerts.silences).
    resent: set[tuple[str, str]] = field(default_factory=set)

    def as_json(self) -> dict[str, object]:
        return {"outcomes": dict(self.outcomes)}


async def record(
    store: Store,
    clock: Clock,
    config: AlertsConfig,
    source: str,
    alerts: list[Alert],
    *,
    cut_short: bool = False,
) -> Receipt:
    """Record `alerts`, read from `source`'s endpoint, in one transaction;
    StoreUnavailable/StoreBusy when the store cannot (nothing recorded: the monitor delivers
    again). `cut_short`: the post left part of its group out (its new alerts say so)."""
    if any(alert.source != source for alert in alerts):  # a caller's mistake, never input
        raise ValueError(f"alerts of another source than {source!r}")
    receipt = Receipt()
    outcomes = receipt.outcomes
    routed: dict[tuple[str, str], Routed] = {}
    for alert in alerts:
        key = (alert.fingerprint, alert.starts_key)
        if key in routed and routed[key].alert.status == alert.status:
            outcomes["duplicate"] += 1  # twice in one post
            continue
        routed[key] = route(alert, config)
    now = clock.now()
    async with store.transaction() as tx:
        known = await storage.known(tx, source, [item.alert for item in routed.values()])
        firing = []
        later: list[str] = []  # fingerprints with a new start
        for key, item in routed.items():
            seen = known.get(key)
            if seen is not None and seen in (item.alert.status, RESOLVED):
                outcomes["duplicate"] += 1
                if seen == FIRING == item.alert.status and source == "alertmanager":
                    receipt.resent.add(key)
            elif item.alert.status == FIRING:
                firing.append((item, "ignored" if item.ignored else PENDING))
            elif await storage.mark_resolved(tx, item.alert, now):
                outcomes["resolved"] += 1
            elif item.alert.starts_at == NO_START and (
                by_key := await storage.resolve_by_key(tx, source, item.alert.fingerprint, now)
            ):
                outcomes[by_key] += 1  # resolved by its key alone: whichever start it had
            elif await storage.insert_many(tx, [(item, "recorded")], now):
                outcomes["recorded"] += 1  # resolved before it was ever seen firing
                later.append(item.alert.fingerprint)
            else:
                outcomes["duplicate"] += 1
        inserted = await storage.insert_many(tx, firing, now, cut_short=cut_short)
        for item, outcome in firing:
            if (item.alert.fingerprint, item.alert.starts_key) not in inserted:
                outcomes["duplicate"] += 1  # another replica recorded it meanwhile
            else:
                outcomes["ignored" if outcome == "ignored" else "new"] += 1
        later += [fingerprint for fingerprint, _ in inserted]
        # A new start of a fingerprint ends its earlier occurrence, resolution sent or not
        # (told by the worker; not an outcome of this post).
        superseded = await storage.supersede(tx, source, later, now) if later else 0
    for outcome, count in outcomes.items():
        metrics.ALERTS_RECEIVED.labels(source, outcome).inc(count)
    receipt.superseded = superseded
    return receipt
