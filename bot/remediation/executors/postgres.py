"""PostgreSQL actions: end sessions by filter, or cancel (then terminate) one backend by pid.

Never touched, whatever the filter says: the bot's own backends (`application_name`
"chatops-bot" or "chatops-bot <purpose>", and the session running the statement), other
databases than the catalogued one, background workers; superuser and replication backends
unless the catalog entry allows them (`terminate_superuser`, `terminate_replication`).

A request made from a diagnosis names its pids (`pids`): the dry run then lists only those
of them that still match the filter, never a newcomer, so what the finding named is what the
preview lists and what an approval ends. A backend is known by (pid, backend_start): at
execution only the backends of the preview that still match the filter are ended. A pid
that is gone, or reused by a new session, is reported, never replaced by a new match.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bot.catalog import PostgresTarget
from bot.durations import humanize_seconds
from bot.remediation.actions import AgeParams, BackendParams, Params
from bot.remediation.plans import NotApplicable, Outcome, Preview, Target, unreached
from bot.sqltext import shown_query
from bot.targets.errors import TargetDenied, TargetError
from bot.targets.postgres import PostgresClient, PostgresSession, left_alone

_SESSIONS = """
SELECT a.pid, a.backend_start::text AS backend_start, a.usename AS "user",
       a.application_name AS app, a.state, a.backend_type,
       coalesce(r.rolsuper, false) AS superuser,
       extract(epoch FROM now() - a.state_change)::float AS state_s,
       extract(epoch FROM now() - a.query_start)::float AS query_s,
       a.query_start::text AS query_start,
       left(a.query, 1000) AS query,  -- shown with placeholders, clipped to 120
       a.pid = pg_backend_pid() AS is_self
FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
WHERE a.datname = current_database() AND a.backend_type IN ('client backend', 'walsender')
ORDER BY a.pid
"""

# Sessions of other roles the bot's role may not read (no pg_read_all_stats): type and state
# read NULL, so no filter matches them; the preview says they are there.
_UNREADABLE = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
    " AND backend_type IS NULL AND usename IS NOT NULL ORDER BY pid"
)
_GRANT = "grant it pg_read_all_stats, and pg_signal_backend to end them"

# action -> (what it ends, which sessions match, the age column it reads)
_FILTERS: dict[str, tuple[str, Callable[[dict[str, Any]], bool], str]] = {
    "postgres.terminate_idle_in_transaction": (
        "sessions idle in transaction",
        lambda row: str(row["state"]).startswith("idle in transaction"),
        "state_s",
    ),
    "postgres.terminate_idle": ("connections idle", lambda row: row["state"] == "idle", "state_s"),
    "postgres.terminate_long_queries": (
        "active queries running",
        lambda row: row["state"] == "active",
        "query_s",
    ),
}


def _catalog(target: Target) -> PostgresTarget:
    if target.entry.postgres is None:
        raise NotApplicable(f"The catalog names no PostgreSQL for '{target.service}'.")
    return target.entry.postgres


def protected(row: dict[str, Any], pg: PostgresTarget) -> str | None:
    """Why a backend must be left alone, or None (the rule diagnostics apply too)."""
    return left_alone(row, pg)


def _count(n: int, what: str) -> str:
    """`3 sessions idle in transaction`, `1 session idle in transaction`."""
    if n != 1:
        return f"{n} {what}"
    noun, _, rest = what.partition(" ")
    if noun == "active":  # "active queries running"
        return f"1 active query {rest.partition(' ')[2]}"
    return f"1 {noun.removesuffix('s')} {rest}"


def _who(row: dict[str, Any]) -> str:
    return f"app={row['app'] or '-'}, user={row['user'] or '-'}"


def _pids(rows: list[dict[str, Any]]) -> str:
    return ", ".join(str(r["pid"]) for r in rows)


# Ending a backend is asynchronous: it goes at its next check for interrupts, moments later
# on a loaded server (longer stuck in I/O). Awaited this long, well within the run's timeout,
# before it is reported as still connected.
GONE_WAIT_S = 5.0


async def _gone(session: PostgresSession, keys: list[tuple[int, str]]) -> list[int]:
    """Pids among `keys` that no longer exist, waiting up to GONE_WAIT_S for the rest."""
    wanted = {pid for pid, _ in keys}
    deadline = asyncio.get_running_loop().time() + GONE_WAIT_S
    while True:
        rows = await session.fetchall(
            "SELECT pid, backend_start::text AS backend_start FROM pg_stat_activity"
            " WHERE pid = ANY(%s)",
            (list(wanted),),
        )
        alive = {(r["pid"], r["backend_start"]) for r in rows}
        gone = [pid for pid, start in keys if (pid, start) not in alive]
        if len(gone) == len(keys) or asyncio.get_running_loop().time() >= deadline:
            return gone
        await asyncio.sleep(0.1)


async def _query_ended(session: PostgresSession, row: dict[str, Any]) -> str | None:
    """How the query `row` was running ended (its backend idle, on a newer query, or gone),
    waiting up to GONE_WAIT_S: a cancel is asynchronous too. None while it still runs."""
    deadline = asyncio.get_running_loop().time() + GONE_WAIT_S
    while True:
        now = await session.fetchone(
            "SELECT state, query_start::text AS query_start FROM pg_stat_activity"
            " WHERE pid = %s AND backend_start::text = %s",
            (row["pid"], row["backend_start"]),
        )
        if now is None:
            return f"its query ended; backend {row['pid']} is gone"
        if now["state"] != "active" or now["query_start"] != row["query_start"]:
            return f"its query ended; backend {row['pid']} is {now['state'] or 'connected'}"
        if asyncio.get_running_loop().time() >= deadline:
            return None
        await asyncio.sleep(0.1)


def _still_connected(alive: list[int]) -> str:
    """Signalled, yet still there: the signal was taken, and it may end any moment."""
    pids = ", ".join(map(str, alive))
    if len(alive) == 1:
        return f"pid {pids} still connected after {GONE_WAIT_S:g} s: check it"
    return f"pids {pids} still connected after {GONE_WAIT_S:g} s: check them"


async def _terminate(
    session: PostgresSession, rows: list[dict[str, Any]]
) -> tuple[str, Outcome | None]:
    """Terminate each backend in turn; a failure after the first says what was already
    ended (an Outcome), as a rerun would otherwise be asked for sessions already gone."""
    for done, row in enumerate(rows):
        try:
            await session.fetchone("SELECT pg_terminate_backend(%s)", (row["pid"],))
        except TargetError as exc:
            if not done:
                raise
            changed = f"terminated pids {_pids(rows[:done])}"
            return changed, _stopped(changed, rows[done:], exc)
    return f"terminated pids {_pids(rows)}", None


def _stopped(changed: str, rest: list[dict[str, Any]], exc: TargetError) -> Outcome:
    """Part of the change made, then `exc` on the rest: refused is known not done; a lost
    connection or no answer may have ended the backend it was ending."""
    refused = isinstance(exc, TargetDenied)
    if refused:
        after = f"not ended: pids {_pids(rest)}"
    else:
        after = f"pid {rest[0]['pid']} may or may not have been ended: check it"
        if rest[1:]:
            after += f"; not ended: pids {_pids(rest[1:])}"
    return Outcome(False, f"{changed}; then {exc}", after, known=refused)


def _cancel_outcome(pid: int, ended: str | None, drift: str, drifted: list[int]) -> Outcome:
    """A cancel sent: its query ended (`ended` says how), or still runs after GONE_WAIT_S,
    which is no failure either (the cancel was taken; it lands at the query's next check)."""
    facts = {"left_alone": drifted}
    if ended is None:
        sent = f"cancel sent to the query of backend {pid}"
        still = f"{sent}; still running after {GONE_WAIT_S:g} s: check it"
        return Outcome(True, still, "its query still running", drift, facts=facts)
    return Outcome(True, f"cancelled the query of backend {pid}", ended, drift, facts=facts)


def _query_ended_since(
    still: list[dict[str, Any]], params: BackendParams, preview: Preview
) -> Outcome | None:
    """Nothing done, when a cancel's query (the one the preview showed) is no longer the one
    running: cancelling now would stop a query nobody approved, or report a success for a
    query that ended by itself. A terminate ends the session, whatever it runs now."""
    seen = preview.facts.get("query_start")  # absent in requests made before it was kept
    if params.terminate or not still or seen is None:
        return None
    row = still[0]
    if row["state"] == "active" and row["query_start"] == seen:
        return None
    now = "runs another query" if row["state"] == "active" else f"is {row['state'] or 'idle'}"
    return Outcome(
        False,
        "nothing changed",
        f"backend {row['pid']} {now}",
        drift=f"the query of backend {row['pid']} the preview showed has ended",
        facts={"left_alone": [row["pid"]]},
    )


class PostgresExecutor:
    async def preview(self, target: Target, params: Params) -> Preview:
        pg = _catalog(target)
        client = PostgresClient(pg, purpose="remediate")
        async with client.session() as session:
            rows = await session.fetchall(_SESSIONS)
            unreadable = [r["pid"] for r in await session.fetchall(_UNREADABLE)]
            if isinstance(params, BackendParams):
                if params.pid in unreadable:
                    raise NotApplicable(
                        f"Backend {params.pid} is another role's, whose sessions the bot's role"
                        f" cannot read: {_GRANT}."
                    )
                return await self._preview_backend(session, pg, rows, params)
            assert isinstance(params, AgeParams)
            what, matches, age = _FILTERS[target.spec.name]
            over = [r for r in rows if matches(r) and (r[age] or 0) > params.older_than_s]
            named = set(params.pids) if params.pids is not None else None
            unnamed = [r for r in over if named is not None and r["pid"] not in named]
            over = [r for r in over if named is None or r["pid"] in named]
            chosen = [r for r in over if protected(r, pg) is None]
            spared = [f"{r['pid']} ({protected(r, pg)})" for r in over if protected(r, pg)]
        span = humanize_seconds(params.older_than_s)
        # Named (by a diagnosis, or typed) but not matching now: finished, committed, gone, or
        # never of the filter (a typed pid); "no longer" would claim it once matched.
        moved = sorted((named or set()) - {r["pid"] for r in over})
        unread = (
            f"; {len(unreadable)} session{'s' if len(unreadable) != 1 else ''} of other roles"
            f" not readable by the bot's role, not touched ({_GRANT})"
            if unreadable
            else ""
        )
        if not chosen:
            left = f"; left alone: {', '.join(spared)}" if spared else ""
            if moved:
                left += f"; named, but not matching now: pids {', '.join(map(str, moved))}"
            left += unread
            raise NotApplicable(
                f"No {what} for more than {span} on {target.service}'s database{left}."
            )
        apps = sorted({_who(r) for r in chosen})
        summary = (
            f"terminate {_count(len(chosen), what)} for more than {span}: pids {_pids(chosen)}"
            f" ({'; '.join(apps[:5])})"
        )
        if spared:
            summary += f"; left alone: {', '.join(spared)}"
        if moved:
            summary += f"; named, but not matching now: pids {', '.join(map(str, moved))}"
        if unnamed:
            summary += f"; not among the pids named, not touched: pids {_pids(unnamed[:10])}" + (
                " ..." if len(unnamed) > 10 else ""
            )
        summary += unread
        return Preview(
            summary,
            {
                "backends": [[r["pid"], r["backend_start"]] for r in chosen],
                "older_than_s": params.older_than_s,
                "spared": spared,
            },
        )

    async def _preview_backend(
        self,
        session: PostgresSession,
        pg: PostgresTarget,
        rows: list[dict[str, Any]],
        params: BackendParams,
    ) -> Preview:
        row = next((r for r in rows if r["pid"] == params.pid), None)
        if row is None:
            raise NotApplicable(f"No backend {params.pid} on this database.")
        why = protected(row, pg)
        if why is not None:
            raise NotApplicable(f"Backend {params.pid} is {why}: the bot leaves it alone.")
        if not params.terminate and row["state"] != "active":
            # Idle in a transaction it still holds locks: a cancel would report success.
            raise NotApplicable(
                f"Backend {params.pid} runs no query ({row['state']}), so cancelling would"
                " change nothing: add terminate=yes to end its session."
            )
        blocked = await session.fetchall(
            "SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid)) ORDER BY pid",
            (params.pid,),
        )
        verb = "cancel the query of, then terminate," if params.terminate else "cancel the query of"
        summary = (
            f"{verb} backend {params.pid} ({_who(row)}, {row['state']}"
            f" for {humanize_seconds(row['state_s'] or 0)}:"
            f" {shown_query(row['query'], pg.show_query_text, limit=120) or '-'})"
        )
        if blocked:
            summary += f"; it blocks pids {_pids(blocked)}"
        return Preview(
            summary,
            {
                "backends": [[row["pid"], row["backend_start"]]],
                "blocked": [r["pid"] for r in blocked],
                "terminate": params.terminate,
                # A cancel is approved for this query, not for whatever the session runs next.
                "query_start": row["query_start"],
            },
        )

    async def execute(self, target: Target, params: Params, preview: Preview) -> Outcome:
        pg = _catalog(target)
        keys = [(int(pid), str(start)) for pid, start in preview.facts["backends"]]
        client = PostgresClient(pg, purpose="remediate")
        async with contextlib.AsyncExitStack() as stack:
            try:
                session = await stack.enter_async_context(client.session(read_only=False))
                rows = await session.fetchall(_SESSIONS)
            except TargetError as exc:  # an overloaded database, before anything was sent
                return unreached(exc)
            live = {(r["pid"], r["backend_start"]): r for r in rows}
            if isinstance(params, BackendParams):
                still = [live[k] for k in keys if k in live and protected(live[k], pg) is None]
                ended_since = _query_ended_since(still, params, preview)
                if ended_since is not None:
                    return ended_since
            else:
                assert isinstance(params, AgeParams)
                _, matches, age = _FILTERS[target.spec.name]
                still = [
                    live[k]
                    for k in keys
                    if k in live
                    and protected(live[k], pg) is None
                    and matches(live[k])
                    and (live[k][age] or 0) > params.older_than_s
                ]
            kept = {(r["pid"], r["backend_start"]) for r in still}
            drifted = [pid for pid, start in keys if (pid, start) not in kept]
            drift = (
                f"no longer matching the preview, left alone: pids {', '.join(map(str, drifted))}"
                if drifted
                else ""
            )
            if not still:
                return Outcome(False, "nothing changed", "no backend of the preview remains", drift)
            if isinstance(params, BackendParams):
                changed, stopped = await self._cancel_then_terminate(session, still[0], params)
            else:
                changed, stopped = await _terminate(session, still)
            if stopped is not None:
                return replace(stopped, drift=drift, facts={"left_alone": drifted})
            ended = [(r["pid"], r["backend_start"]) for r in still]
            cancel_only = isinstance(params, BackendParams) and not params.terminate
            try:
                if cancel_only:
                    # Whether the query stopped, not whether the session is there (it stays).
                    ended_how = await _query_ended(session, still[0])
                    return _cancel_outcome(still[0]["pid"], ended_how, drift, drifted)
                gone = await _gone(session, ended)
            except TargetError as exc:
                # The backends were signalled: that stands, whatever the read back says.
                after = f"pids {_pids(still)} could not be read back: check them ({exc.detail})"
                return Outcome(True, changed, after, drift, facts={"left_alone": drifted})
        alive = [pid for pid, _ in ended if pid not in gone]
        after = f"gone: pids {', '.join(map(str, gone))}" if gone else "none gone"
        if alive:
            after += f"; still connected: pids {', '.join(map(str, alive))}"
            # The terminate was sent and taken: not Failed (a rerun would signal it again),
            # but not "terminated" either while the backend is still there.
            sent = f"terminate sent to pids {_pids(still)}"
            if isinstance(params, BackendParams):
                sent = f"cancelled the query of backend {still[0]['pid']}, then sent terminate"
            changed = f"{sent}; {_still_connected(alive)}"
        return Outcome(
            ok=True,
            changed=changed,
            after=after,
            drift=drift,
            facts={"gone": gone, "alive": alive, "left_alone": drifted},
        )

    async def _cancel_then_terminate(
        self, session: PostgresSession, row: dict[str, Any], params: BackendParams
    ) -> tuple[str, Outcome | None]:
        pid = row["pid"]
        await session.fetchone("SELECT pg_cancel_backend(%s)", (pid,))
        cancelled = f"cancelled the query of backend {pid}"
        if not params.terminate:
            return cancelled, None
        await asyncio.sleep(0.5)  # a cancelled query ends within moments; idle sessions don't
        try:
            await session.fetchone("SELECT pg_terminate_backend(%s)", (pid,))
        except TargetError as exc:
            return cancelled, _stopped(cancelled, [row], exc)
        return f"{cancelled}, then terminated it", None
