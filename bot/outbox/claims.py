"""Claiming due effects in runs: each lane's next effects together, in one statement pair.

A run is the start of a lane's undone effects (in its order) whose members are all due and
unclaimed, up to `run_length` of them: the lane's head and the effects right behind it, none
held back by an earlier one that is waiting, retrying or in flight. Claiming only heads read
every undone row to hand out one effect per lane, so a few lanes with long queues cost a claim
per effect; a run hands out up to `run_length` for the same read.

The batch is ordered by turn (every lane's head, then every lane's second, ...), so a batch
too small for all the runs shortens each lane's run rather than leaving a lane out, and a run
member is in it only with every earlier member of its run. The rows are then locked and
re-checked (SKIP LOCKED on PostgreSQL: another process may have claimed or finished one since
it was read); a member is kept only if every earlier one of its lane was claimed with it, and
one claimed after a gap is given back in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import replace

from bot.clock import utc_from_timestamp
from bot.outbox.queue import PLACE, UNDONE, Effect
from bot.store import Row, Store, Tx, skip_locked

# Each undone effect with its turn in its lane and how many effects up to and including it
# are not free to take (not yet due, claimed by a claim that has not run out, or of a kind
# another of this process' loops delivers, `{kinds}`). A lane's run is its effects with none
# of those before them; an effect without a lane keeps no order, so it is free whenever it is
# itself (those share one partition: their turns only order them).
_RUNS = (
    "SELECT id, lane FROM (SELECT id, lane, place, held,"
    " ROW_NUMBER() OVER lane_order AS turn, SUM(held) OVER lane_order AS held_so_far"
    f" FROM (SELECT id, lane, {PLACE} AS place,"
    " CASE WHEN available_at <= ? AND (claimed_until IS NULL OR claimed_until < ?){kinds}"
    f" THEN 0 ELSE 1 END AS held FROM outbox WHERE {UNDONE}) undone"
    " WINDOW lane_order AS (PARTITION BY lane ORDER BY place, id ROWS UNBOUNDED PRECEDING)) r"
    " WHERE (held_so_far = 0 AND turn <= ?) OR (lane IS NULL AND held = 0)"
    " ORDER BY turn, place, id LIMIT ?"
)


async def claim_runs(
    tx: Tx,
    now: float,
    claimed_until: float,
    batch_size: int,
    run_length: int,
    apart: Sequence[str] = (),
    *,
    of_apart: bool = False,
) -> list[Effect]:
    """Claim up to `batch_size` due effects, in runs of up to `run_length` per lane, until
    `claimed_until`; returned in delivery order (by turn, then place).

    Only effects of the kinds in `apart` when `of_apart`, else only the others (two loops
    deliver them, bot.outbox.apart): an effect of the other loop's kinds holds back the
    later effects of its lane as one in flight does, so a lane keeps its order across both."""
    kinds = ""
    if apart:
        kinds = f" AND kind {'' if of_apart else 'NOT '}IN ({', '.join('?' * len(apart))})"
    elif of_apart:
        return []
    picked = await tx.fetchall(
        _RUNS.replace("{kinds}", kinds), (now, now, *apart, run_length, batch_size)
    )
    if not picked:
        return []
    ids = [int(row["id"]) for row in picked]
    rows = await tx.fetchall(
        "UPDATE outbox SET claimed_until = ?, attempts = attempts + 1 WHERE id IN ("
        f" SELECT id FROM outbox WHERE id IN ({', '.join('?' * len(ids))})"
        f" AND {UNDONE} AND (claimed_until IS NULL OR claimed_until < ?){skip_locked(tx)})"
        f" RETURNING id, kind, lane, payload, attempts, created_at, {PLACE} AS position",
        (claimed_until, *ids, now),
    )
    taken = {int(row["id"]): row for row in rows}
    kept: list[Effect] = []
    broken: set[str] = set()  # lanes with a member this claim did not get
    for row in picked:  # in turn order: a lane's earlier members come first
        effect_id, lane = int(row["id"]), row["lane"]
        got = taken.get(effect_id)
        if lane is not None and (got is None or lane in broken):
            if got is None:
                broken.add(lane)
            continue
        if got is not None:
            kept.append(_effect(got, claimed_until))
    gave_back = set(taken) - {effect.id for effect in kept}
    if gave_back:  # claimed behind a gap: another process holds an earlier member
        await _give_back(tx, gave_back, claimed_until)
    return kept


async def release(store: Store, effects: Iterable[Effect]) -> None:
    """Give back claimed effects that were not tried (the rest of a run that stopped), so
    the next claim, of any process, can take them at once rather than after the claim."""
    by_claim: dict[float, set[int]] = {}
    for effect in effects:
        if effect.claimed_until is not None:
            by_claim.setdefault(effect.claimed_until, set()).add(effect.id)
    if not by_claim:
        return
    async with store.transaction() as tx:
        for claimed_until, ids in by_claim.items():
            await _give_back(tx, ids, claimed_until)


async def still_held(
    store: Store, effect: Effect, now: float, claim_seconds: float
) -> Effect | None:
    """`effect` with its claim good for a whole delivery, or None if it is no longer ours.

    A batch (its runs too) is claimed at once and delivered one by one, each waiting for
    its Slack slot: the last may start after its claim ran out and another process took it
    over. A claim with less than half its time left is renewed, only if it is still the
    one this process set; the handler's timeout is shorter than that half, so a claim
    never runs out under a handler.
    """
    if effect.claimed_until is None or effect.claimed_until - now >= claim_seconds / 2:
        return effect
    renewed = now + claim_seconds
    async with store.transaction() as tx:
        changed = await tx.execute(
            f"UPDATE outbox SET claimed_until = ? WHERE id = ? AND claimed_until = ? AND {UNDONE}",
            (renewed, effect.id, effect.claimed_until),
        )
    return replace(effect, claimed_until=renewed) if changed == 1 else None


async def _give_back(tx: Tx, ids: set[int], claimed_until: float) -> None:
    # Only while the claim is still this one (not taken over since it ran out), and without
    # the attempt the claim counted: the effect was not tried.
    await tx.execute(
        "UPDATE outbox SET claimed_until = NULL, attempts = attempts - 1"
        f" WHERE claimed_until = ? AND {UNDONE} AND id IN ({', '.join('?' * len(ids))})",
        (claimed_until, *sorted(ids)),
    )


def _effect(row: Row, claimed_until: float) -> Effect:
    return Effect(
        id=int(row["id"]),
        kind=row["kind"],
        lane=row["lane"],
        payload=json.loads(row["payload"]),
        attempts=int(row["attempts"]),
        created_at=utc_from_timestamp(row["created_at"]),
        position=int(row["position"]),
        claimed_until=claimed_until,
    )
