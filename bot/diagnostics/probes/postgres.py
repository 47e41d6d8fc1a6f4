"""PostgreSQL: the runbook's read-only queries over one labelled, read-only session (the
sessions' findings are in postgres_sessions; the server's statistics are here).

Every query leaves out the bot's own sessions (`application_name` chatops-bot, or
chatops-bot and a space) and the session asking. Thresholds: `db_connections_pct`,
`long_query_s`, `idle_in_transaction_s`, `idle_connection_s`, `replication_lag_s`,
`dead_tuple_pct`, `response_ms` (mean statement).
"""

from __future__ import annotations

from bot.catalog import Band, PostgresTarget, Thresholds
from bot.diagnostics.findings import Check, Finding, Grade
from bot.diagnostics.grading import describe_above, grade_above, seconds_words, size_words
from bot.diagnostics.probes.postgres_sessions import (
    HIDDEN,
    blocking,
    connections,
    hidden_sessions,
    idle,
    long_queries,
    one_line,
)
from bot.sqltext import QueryTextMode
from bot.targets.errors import TargetError
from bot.targets.postgres import PostgresClient, PostgresSession

# Dead-tuple ratios of tiny tables say nothing.
_MIN_DEAD_TUPLES = 1000


def checks(target: PostgresTarget, thresholds: Thresholds, client: PostgresClient) -> list[Check]:
    async def run() -> list[Finding]:
        async with client.session(read_only=True) as session:
            return await _diagnose(session, target, thresholds)

    # One session for all queries: an overloaded database gets one more connection, not ten.
    return [Check("postgres", "postgres", "PostgreSQL", target.timeout.seconds + 1, run)]


async def _diagnose(
    session: PostgresSession, target: PostgresTarget, thresholds: Thresholds
) -> list[Finding]:
    overview = await session.fetchone(
        "SELECT current_database() AS db, split_part(version(), ' ', 2) AS version,"
        " current_setting('max_connections')::int AS max_connections,"
        " pg_is_in_recovery() AS replica, pg_database_size(current_database()) AS size"
    )
    assert overview is not None
    findings = [
        Finding(
            "postgres.reachable",
            "Reachable",
            Grade.OK,
            f"PostgreSQL {overview['version']}, database {overview['db']}"
            f" ({size_words(overview['size'])})",
            facts={"size_bytes": overview["size"]},
        )
    ]
    hidden_row = await session.fetchone(
        f"SELECT count(*) AS n FROM pg_stat_activity WHERE {HIDDEN}"
    )
    hidden = int(hidden_row["n"]) if hidden_row else 0
    if hidden:
        findings.append(hidden_sessions(hidden))
    findings.append(await connections(session, overview["max_connections"], thresholds, hidden))
    findings.append(await long_queries(session, target, thresholds.long_query_s, hidden))
    idle_tx = thresholds.idle_in_transaction_s
    findings.append(await idle(session, target, "idle in transaction", idle_tx, hidden))
    findings.append(await idle(session, target, "idle", thresholds.idle_connection_s, hidden))
    findings.append(await blocking(session, target, thresholds.long_query_s))
    findings.append(await _statements(session, thresholds.response_ms, target.show_query_text))
    if overview["replica"]:
        findings.append(await _replication_lag(session, thresholds.replication_lag_s))
    findings.append(await _dead_tuples(session, thresholds.dead_tuple_pct))
    return findings


async def _statements(session: PostgresSession, band: Band, shown: QueryTextMode) -> Finding:
    installed = await session.fetchone(
        "SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'"
    )
    title = "Slowest statements"
    if installed is None:
        return Finding(
            "postgres.statements",
            title,
            Grade.OK,
            "note: pg_stat_statements is not installed, so no statement statistics",
            facts={"available": False},
        )
    try:
        rows = await session.fetchall(
            "SELECT query, calls, mean_exec_time::float AS mean_ms,"
            " total_exec_time::float AS total_ms FROM pg_stat_statements"
            " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " ORDER BY mean_exec_time DESC LIMIT 5"
        )
    except TargetError as exc:  # installed but not in shared_preload_libraries
        return Finding(
            "postgres.statements",
            title,
            Grade.OK,
            f"note: pg_stat_statements is installed but cannot be read ({exc.detail[:120]})",
            facts={"available": False},
        )
    if not rows:
        return Finding("postgres.statements", title, Grade.OK, "no statements recorded yet")
    worst = float(rows[0]["mean_ms"])
    return Finding(
        "postgres.statements",
        title,
        grade_above(worst, band),
        f"slowest mean {worst:.0f} ms over {rows[0]['calls']} calls",
        threshold=describe_above(band, " ms mean"),
        evidence=tuple(
            f"{float(r['mean_ms']):.1f} ms mean · {r['calls']} calls ·"
            f" {float(r['total_ms']) / 1000:.1f} s total · {one_line(r['query'], shown)}"
            for r in rows
        ),
        facts={"available": True, "worst_mean_ms": worst},
    )


async def _replication_lag(session: PostgresSession, band: Band) -> Finding:
    row = await session.fetchone(
        "SELECT coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)::float"
        " AS lag_s"
    )
    lag = float(row["lag_s"]) if row else 0.0
    return Finding(
        "postgres.replication",
        "Replication lag",
        grade_above(lag, band),
        f"replica, last replayed transaction {seconds_words(lag)} ago",
        threshold=describe_above(band, " s"),
        facts={"lag_s": lag},
    )


async def _dead_tuples(session: PostgresSession, band: Band) -> Finding:
    rows = await session.fetchall(
        "SELECT schemaname, relname, n_live_tup, n_dead_tup,"
        " greatest(last_vacuum, last_autovacuum) AS vacuumed FROM pg_stat_user_tables"
        " ORDER BY n_dead_tup DESC LIMIT 5"
    )
    limit = describe_above(band, " % dead") + f" (tables with ≥ {_MIN_DEAD_TUPLES} dead tuples)"
    worst_pct, worst_name = 0.0, ""
    lines = []
    for r in rows:
        dead, live = int(r["n_dead_tup"]), int(r["n_live_tup"])
        pct = 100.0 * dead / (dead + live) if dead + live else 0.0
        vacuumed = r["vacuumed"].isoformat(timespec="minutes") if r["vacuumed"] else "never"
        lines.append(
            f"{r['schemaname']}.{r['relname']}: {dead} dead / {live} live ({pct:.0f} %),"
            f" last vacuum {vacuumed}"
        )
        if dead >= _MIN_DEAD_TUPLES and pct > worst_pct:
            worst_pct, worst_name = pct, f"{r['schemaname']}.{r['relname']}"
    summary = f"worst {worst_name} at {worst_pct:.0f} % dead" if worst_name else "nothing to note"
    return Finding(
        "postgres.dead_tuples",
        "Dead tuples",
        grade_above(worst_pct, band) if worst_name else Grade.OK,
        summary,
        threshold=limit,
        evidence=tuple(lines),
        facts={"worst_pct": worst_pct, "table": worst_name},
    )
