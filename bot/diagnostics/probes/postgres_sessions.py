"""PostgreSQL sessions (pg_stat_activity): connections, long queries, idle sessions and
blocking chains, each naming the pids a remediation would end and those it would leave alone.

Every query leaves out the bot's own sessions (`application_name` chatops-bot, or
chatops-bot and a space: not chatops-bot-exporter, another app's) and the
session asking; statements are shown as the catalog entry says (placeholders by default).
"""

from __future__ import annotations

from typing import Any

from bot.catalog import Band, PostgresTarget, Thresholds
from bot.diagnostics.findings import Finding, Grade
from bot.diagnostics.grading import describe_above, grade_above, seconds_words
from bot.sqltext import QueryTextMode, shown_query
from bot.targets.postgres import NOT_THE_BOTS_SQL, PostgresSession, left_alone

# Sessions worth reporting: client backends that are neither the bot nor this session.
_OTHERS = f"backend_type = 'client backend' AND pid <> pg_backend_pid() AND {NOT_THE_BOTS_SQL}"
# What remediation needs to know of a named session: whose it is, which database it is on.
_WHOSE = (
    "backend_type, datname = current_database() AS here, coalesce(datname, '') AS db,"
    " coalesce((SELECT rolsuper FROM pg_roles WHERE oid = usesysid), false) AS superuser"
)
_WHY_LEFT_ALONE = {
    "superuser": "superuser sessions, and the catalog's terminate_superuser is off",
    "replication": "replication, and the catalog's terminate_replication is off",
    "the bot's own": "the bot's own sessions",
    "database": "on another database than the catalogued one",
}
# Sessions of other roles that the bot's role may not read (it lacks pg_read_all_stats): their
# type, state and query read NULL, so no check above would see or count them.
HIDDEN = "backend_type IS NULL AND usename IS NOT NULL AND datname IS NOT NULL"
_STATEMENT_CHARS = 300
_ROWS = 20


def hidden_sessions(hidden: int) -> Finding:
    return Finding(
        "postgres.visibility",
        "Other roles' sessions",
        Grade.WARN,
        f"{hidden} hidden from the bot's role: their state and queries cannot be read, so the"
        " checks below see only its own role's sessions (grant it pg_read_all_stats)",
        threshold="every session readable",
        facts={"hidden": hidden},
    )


def _unseen(hidden: int) -> str:
    sessions = "session" if hidden == 1 else "sessions"
    return f" ({hidden} {sessions} of other roles not readable)" if hidden else ""


async def connections(
    session: PostgresSession, maximum: int, t: Thresholds, hidden: int
) -> Finding:
    rows = await session.fetchall(
        "SELECT coalesce(state, 'unknown') AS state, coalesce(application_name, '') AS app,"
        f" count(*) AS n FROM pg_stat_activity WHERE {_OTHERS}"
        " GROUP BY 1, 2 ORDER BY 3 DESC"
    )
    if hidden:  # they hold connections all the same
        rows.append({"state": "not readable", "app": "", "n": hidden})
    total = sum(int(r["n"]) for r in rows)
    pct = 100.0 * total / maximum if maximum else 0.0
    by_state: dict[str, int] = {}
    for row in rows:
        by_state[row["state"]] = by_state.get(row["state"], 0) + int(row["n"])
    states = ", ".join(f"{n} {state}" for state, n in sorted(by_state.items())) or "none"
    return Finding(
        "postgres.connections",
        "Connections",
        grade_above(pct, t.db_connections_pct),
        f"{total} of {maximum} ({pct:.0f} %): {states}",
        threshold=describe_above(t.db_connections_pct, " % of max_connections"),
        evidence=tuple(f"{r['n']} {r['state']} · application {r['app'] or '(none)'}" for r in rows),
        facts={"total": total, "max": maximum, "pct": pct, "by_state": by_state},
    )


def _session_line(row: dict[str, Any], shown: QueryTextMode, age_key: str = "age_s") -> str:
    return (
        f"pid {row['pid']} · user {row['usename']} · application {row['app'] or '(none)'}"
        f" · {seconds_words(float(row[age_key]))} · {one_line(row['query'], shown)}"
    )


def _how_many(rows: list[dict[str, Any]]) -> str:
    """How many sessions match: all of them, not the first _ROWS read (and named)."""
    total = int(rows[0]["total"])
    return str(total) if total <= len(rows) else f"{total} (the first {len(rows)} named)"


def _left_alone(rows: list[dict[str, Any]], target: PostgresTarget) -> list[list[Any]]:
    """[pid, reason] for each named session remediation would refuse to end."""
    spared = []
    for row in rows:
        why = "database" if not row["here"] else left_alone(row, target)
        if why is not None:
            spared.append([int(row["pid"]), why])
    return spared


def _why_not(spared: list[list[Any]], named: int) -> str:
    """The summary's note on the sessions no suggested fix will end, and why."""
    if not spared:
        return ""
    by_reason: dict[str, list[str]] = {}
    for pid, why in spared:
        by_reason.setdefault(why, []).append(str(pid))
    reasons = "; ".join(
        f"pids {', '.join(pids)}: {_WHY_LEFT_ALONE.get(why, why)}"
        for why, pids in by_reason.items()
    )
    lead = "no fix offered" if len(spared) >= named else "left out of the fix"
    return f"; {lead} ({reasons})"


def one_line(statement: str | None, shown: QueryTextMode) -> str:
    # Another session's text: literals become placeholders unless the catalog opts in.
    return shown_query(statement, shown, limit=_STATEMENT_CHARS)


async def long_queries(
    session: PostgresSession, target: PostgresTarget, band: Band, hidden: int
) -> Finding:
    rows = await session.fetchall(
        f"SELECT pid, usename, coalesce(application_name, '') AS app, query, {_WHOSE},"
        " extract(epoch FROM now() - query_start)::float AS age_s, count(*) OVER () AS total"
        f" FROM pg_stat_activity WHERE {_OTHERS} AND state = 'active'"
        " AND now() - query_start > make_interval(secs => %s)"
        f" ORDER BY query_start LIMIT {_ROWS}",
        (band.warn,),
    )
    if not rows:
        return Finding(
            "postgres.long_queries",
            "Long-running queries",
            Grade.OK,
            "none" + _unseen(hidden),
            threshold=describe_above(band, " s"),
        )
    longest = max(float(r["age_s"]) for r in rows)
    spared = _left_alone(rows, target)
    return Finding(
        "postgres.long_queries",
        "Long-running queries",
        grade_above(longest, band),
        f"{_how_many(rows)} active longer than {seconds_words(band.warn)}; longest"
        f" {seconds_words(longest)} (pid {rows[0]['pid']})"
        + _why_not(spared, len(rows))
        + _unseen(hidden),
        threshold=describe_above(band, " s"),
        evidence=tuple(_session_line(r, target.show_query_text) for r in rows),
        facts={
            "pids": [r["pid"] for r in rows],
            "left_alone": spared,
            "longest_s": longest,
            "over_s": band.warn,
        },
    )


async def idle(
    session: PostgresSession, target: PostgresTarget, state: str, band: Band, hidden: int
) -> Finding:
    in_transaction = state != "idle"
    check = "postgres.idle_in_transaction" if in_transaction else "postgres.idle"
    title = "Idle in transaction" if in_transaction else "Idle connections"
    states = (
        "('idle in transaction', 'idle in transaction (aborted)')" if in_transaction else "('idle')"
    )
    rows = await session.fetchall(
        f"SELECT pid, usename, coalesce(application_name, '') AS app, query, {_WHOSE},"
        " extract(epoch FROM now() - state_change)::float AS age_s, count(*) OVER () AS total"
        f" FROM pg_stat_activity WHERE {_OTHERS} AND state IN {states}"
        " AND now() - state_change > make_interval(secs => %s)"
        f" ORDER BY state_change LIMIT {_ROWS}",
        (band.warn,),
    )
    limit = describe_above(band, " s")
    if not rows:
        return Finding(check, title, Grade.OK, "none" + _unseen(hidden), threshold=limit)
    oldest = max(float(r["age_s"]) for r in rows)
    spared = _left_alone(rows, target)
    return Finding(
        check,
        title,
        grade_above(oldest, band),
        f"{_how_many(rows)} for longer than {seconds_words(band.warn)}; oldest"
        f" {seconds_words(oldest)} (pid {rows[0]['pid']})"
        + _why_not(spared, len(rows))
        + _unseen(hidden),
        threshold=limit,
        evidence=tuple(_session_line(r, target.show_query_text) for r in rows),
        facts={
            "pids": [r["pid"] for r in rows],
            "left_alone": spared,
            "oldest_s": oldest,
            "over_s": band.warn,
        },
    )


async def blocking(session: PostgresSession, target: PostgresTarget, long_query: Band) -> Finding:
    shown = target.show_query_text
    rows = await session.fetchall(
        "SELECT blocked.pid AS blocked_pid, blocked.usename AS blocked_user,"
        " coalesce(blocked.application_name, '') AS blocked_app, blocked.query AS blocked_query,"
        " extract(epoch FROM now() - blocked.query_start)::float AS waited_s,"
        " blocking.pid AS blocking_pid, blocking.usename AS blocking_user,"
        " coalesce(blocking.application_name, '') AS blocking_app, blocking.state AS"
        " blocking_state, blocking.query AS blocking_query,"
        " extract(epoch FROM now() - coalesce(blocking.xact_start, blocking.query_start))::float"
        " AS blocking_age_s, blocking.backend_type, blocking.pid = pg_backend_pid() AS is_self,"
        " coalesce(blocking.application_name, '') AS app,"
        " blocking.datname = current_database() AS here, coalesce(blocking.datname, '') AS db,"
        " coalesce((SELECT rolsuper FROM pg_roles WHERE oid = blocking.usesysid), false)"
        " AS superuser"
        " FROM pg_stat_activity AS blocked"
        " CROSS JOIN LATERAL unnest(pg_blocking_pids(blocked.pid)) AS chain(pid)"
        " JOIN pg_stat_activity AS blocking ON blocking.pid = chain.pid"
        " WHERE blocked.pid <> pg_backend_pid()"
        f" ORDER BY blocked.query_start LIMIT {_ROWS}"
    )
    limit = f"any blocked session; crit when waiting > {seconds_words(long_query.warn)}"
    if not rows:
        return Finding("postgres.blocking", "Blocking chains", Grade.OK, "none", threshold=limit)
    waited = max(float(r["waited_s"]) for r in rows)
    blockers = sorted({int(r["blocking_pid"]) for r in rows})
    evidence = tuple(
        f"pid {r['blocked_pid']} ({r['blocked_user']}, {r['blocked_app'] or 'no application'},"
        f" waiting {seconds_words(float(r['waited_s']))}: {one_line(r['blocked_query'], shown)})"
        f" is blocked by pid {r['blocking_pid']} ({r['blocking_user']},"
        f" {r['blocking_app'] or 'no application'}, {r['blocking_state']}"
        f" {seconds_words(float(r['blocking_age_s']))}: {one_line(r['blocking_query'], shown)})"
        for r in rows
    )
    first = rows[0]
    spared = _left_alone([{**r, "pid": r["blocking_pid"]} for r in rows], target)
    spared = [entry for n, entry in enumerate(spared) if entry not in spared[:n]]
    return Finding(
        "postgres.blocking",
        "Blocking chains",
        Grade.CRIT if waited > long_query.warn else Grade.WARN,
        f"{len(rows)} blocked; pid {first['blocked_pid']} waits on pid {first['blocking_pid']}"
        f" ({first['blocking_user']}, {first['blocking_state']}) for"
        f" {seconds_words(waited)}" + _why_not(spared, len(blockers)),
        threshold=limit,
        evidence=evidence,
        facts={
            "blocking_pids": blockers,
            "left_alone": spared,
            "blocked_pids": [int(r["blocked_pid"]) for r in rows],
            "waited_s": waited,
        },
    )
