"""The outbox: notifications accepted in a transaction, delivered after it commits.

A service enqueues an effect (`kind` + JSON payload) in the same transaction as the state
change, so a Slack outage or a crash between commit and delivery loses nothing: the
dispatcher delivers pending effects, retries what failed for a transient reason (429, 5xx,
network, the database out of reach or busy under a handler) with a short back-off (2 s,
doubling up to 5 min; Retry-After when the far side gives one) for up to `give_up_after`
(24 h), and gives up on permanent errors
(channel_not_found, missing scope) after telling the effect's failure handler. Rows are
claimed atomically, so several bot processes can run dispatchers on one store and each
effect is delivered by one of them.
A dispatcher that stops claims nothing more and lets the deliveries under way finish (up
to the handler timeout): one cut off mid-call would be made again by the next process.

Order. Effects are queued in lanes, and the effects of one lane are delivered one at a time,
in the order they were queued: an effect is delivered only when no earlier effect of its lane
is still undone (waiting, retrying, or being delivered by any process), and claimed only with
every earlier undone one of its lane (a run, delivered in order). The claim reads whose turn
it is and locks those rows in one transaction, re-checking each under its lock (SKIP LOCKED
on PostgreSQL), so it holds across processes. A lane is named after its incident: the
incident's id, or the id, a `/` and a part of its work that keeps its own order (one paging
provider's calls, `INC-.../pagerduty`; a page's DM to one person, `INC-.../dm/U...`, and
the reading of a page's user groups, `INC-.../fanout`, which must not wait behind the
incident's posts in a busy channel); `Effect.incident` reads the
incident back. The key is the incident, not the channel: one change targets several
channels (the war room, the announcement channel, direct messages) whose target is only known
at delivery (a war room that does not exist yet), and the war room's set-up must come before
the updates posted in it. Different lanes do not wait for each other, so one incident's
stuck message never holds up another's announcement; an effect without a lane keeps no order.

- Ids of one lane are handed out in commit order: every transaction that queues effects for
  an incident holds its row (declaring inserts it; changes, reminders and escalations lock it
  first).
- An effect queued while another effect of the same lane is being delivered (the war room's
  invites and summary, a page's direct messages) is a follow-up: it takes that effect's place
  in the order (`order_seq`), ahead of anything queued after it.

Throughput. One claim (two statements) takes a batch of runs: each lane's next effects that
nothing earlier holds back, up to `run_length` per lane and `batch_size` in all, every lane's
head first (bot/outbox/claims.py). A run is delivered in its order, one at a time, and stops
at a member that is retried, fails or was taken over, or whose handler queued a follow-up: the
rest of it is given back untried. Runs of different lanes go `concurrency` at a time if asked.
The delivered ones are marked done together, one statement at the end of the batch, before
the next claim; what a delivery must store (the ts of the card it posted, `write_with_mark`)
goes in the same transaction, marked at the end of its wave, before its lane's next effect.
Marks wait only while the claims are safe: they are written sooner when a waiting effect's
claim would run out before the next handler could time out, and when the dispatcher stops
(bot/outbox/completions.py). A retry or a failure is written on its own.

Apart. The kinds registered `apart` (calls to paging services, a page's on-call look-up, an
alert's or a drill's checks: handlers that post nothing to Slack and call something that may
be slow or hang) are claimed by a loop of their own, one effect per lane at a time, and each is
delivered in a task of its own, `apart_concurrency` (8) at a time, that nobody waits for
(bot/outbox/apart.py): a provider that never answers holds up its own lane, not the Slack
posts, which keep `concurrency` 1 and their order. A lane may hold both: an effect of the
other loop's kinds holds back the lane's later effects as one in flight does, so the lane
keeps its order, and each loop kicks the other once it delivered something. Claims are the
same for both, so each effect is still delivered once, by one process.

Time. A handler has `handler_timeout` (20 s) for its calls; its waits for a Slack pace slot
move that deadline on, within half a claim (bot/outbox/budget.py), and a wait that would go
past it hands the effect back before its call, to come back for its slot.

Retention. Delivered effects are deleted after `keep_delivered` (7 days) and failed ones
after `keep_failed` (30 days, for whoever looks into a failure), by every dispatcher once per
`prune_interval`; an undone effect is never deleted. Nothing reads a delivered row: what later
steps need (the ts of a card edited in place) is stored on the incident.
"""

from bot.outbox.dispatcher import OutboxDispatcher
from bot.outbox.failures import GIVE_UP_AFTER
from bot.outbox.queue import (
    Effect,
    EffectHandler,
    FailureHandler,
    enqueue,
    later_undone,
    undone_count,
    waiting,
    waiting_payloads,
    write_with_mark,
)
from bot.outbox.retention import KEEP_DELIVERED, KEEP_FAILED, PRUNE_INTERVAL

__all__ = [
    "GIVE_UP_AFTER",
    "KEEP_DELIVERED",
    "KEEP_FAILED",
    "PRUNE_INTERVAL",
    "Effect",
    "EffectHandler",
    "FailureHandler",
    "OutboxDispatcher",
    "enqueue",
    "later_undone",
    "undone_count",
    "waiting",
    "waiting_payloads",
    "write_with_mark",
]
