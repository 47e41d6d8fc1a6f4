"""Incident statistics computed in SQL on either store (never by loading every incident).

Definitions (times from the timeline, so a reopened incident keeps its first ack):
- MTTA: first `acknowledged` entry minus declaration.
- MTTR: last `resolved` entry minus declaration, for incidents resolved now.
- MTTD: detection minus the start of impact, where the postmortem gave a detection time.
- Breaches: the first acknowledgement or resolution (resolving ends the wait for an
  acknowledgement: the escalation stops there) came after the ack deadline, or neither came
  by `until`; likewise the last resolution for the resolve deadline. Deadlines count from the
  declaration like MTTA and MTTR (a reopening does not move them; incident_targets), on the
  policy's calendar, so a business-day target skips the weekend.
- Median and p90 interpolate linearly between ranks (PostgreSQL's percentile_cont; on
  SQLite the same rule with window functions).
- Weeks start on Monday 00:00 UTC.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.clock import utc_from_timestamp
from bot.models import Severity
from bot.reports.models import Figure, SeverityStats, Stats, WeekStats
from bot.store import Tx

WEEK = 7 * 86400
_MONDAY = 4 * 86400  # 1970-01-05, the first Monday after the epoch

_FACTS = """
facts AS (
  SELECT i.id, i.severity, i.declared_at,
    (SELECT MIN(t.at) FROM timeline t
      WHERE t.incident_id = i.id AND t.kind = 'acknowledged') AS acked_at,
    (SELECT MIN(t.at) FROM timeline t
      WHERE t.incident_id = i.id AND t.kind IN ('acknowledged', 'resolved')) AS answered_at,
    CASE WHEN i.status = 'resolved' THEN (SELECT MAX(t.at) FROM timeline t
      WHERE t.incident_id = i.id AND t.kind = 'resolved') END AS resolved_at,
    p.started_at, p.detected_at, g.ack_due_at, g.resolve_due_at
  FROM incidents i
  LEFT JOIN postmortems p ON p.incident_id = i.id
  LEFT JOIN incident_targets g ON g.incident_id = i.id
  WHERE i.declared_at >= ? AND i.declared_at < ? AND NOT i.drill
)"""

METRICS = {
    "mtta": "acked_at - declared_at",
    "mttr": "resolved_at - declared_at",
    "mttd": "CASE WHEN detected_at IS NOT NULL THEN detected_at - started_at END",
}


def week_expr(dialect: str) -> str:
    """The week number of `declared_at` (weeks since the first Monday after the epoch)."""
    value = f"(declared_at - {_MONDAY}) / {WEEK}"
    return f"FLOOR({value})" if dialect == "postgres" else f"CAST({value} AS INTEGER)"


def _sqlite_percentile(q: float) -> str:
    # percentile_cont: position q*(n-1) between the ranks below and above, interpolated.
    pos = f"({q} * (n - 1))"
    low = f"CAST({pos} AS INTEGER)"
    at_low = f"MAX(CASE WHEN k = {low} THEN v END)"
    at_high = f"MAX(CASE WHEN k = {low} + 1 THEN v END)"
    frac = f"MAX({pos} - {low})"
    return f"{at_low} + {frac} * (COALESCE({at_high}, {at_low}) - {at_low})"


def percentile_sql(dialect: str, metric: str, group: str) -> str:
    """SELECT grp, n, p50, p90 of `metric` over `facts`, per `group` expression."""
    values = f"SELECT {group} AS grp, ({metric}) AS v FROM facts WHERE ({metric}) IS NOT NULL"
    if dialect == "postgres":
        return (
            f"WITH {_FACTS}, m AS ({values}) SELECT grp, COUNT(*) AS n,"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY v) AS p50,"
            " percentile_cont(0.9) WITHIN GROUP (ORDER BY v) AS p90 FROM m GROUP BY grp"
        )
    return (
        f"WITH {_FACTS}, m AS ({values}), ranked AS (SELECT grp, v,"
        " ROW_NUMBER() OVER (PARTITION BY grp ORDER BY v) - 1 AS k,"
        " COUNT(*) OVER (PARTITION BY grp) AS n FROM m)"
        f" SELECT grp, MAX(n) AS n, {_sqlite_percentile(0.5)} AS p50,"
        f" {_sqlite_percentile(0.9)} AS p90 FROM ranked GROUP BY grp"
    )


async def _figures(
    tx: Tx, metric: str, group: str, since: datetime, until: datetime
) -> dict[str, Figure]:
    rows = await tx.fetchall(
        percentile_sql(tx.dialect, metric, group), (since.timestamp(), until.timestamp())
    )
    return {
        str(row["grp"]): Figure(int(row["n"]), float(row["p50"]), float(row["p90"])) for row in rows
    }


async def compute(tx: Tx, *, since: datetime, until: datetime, days: int) -> Stats:
    """Statistics of the incidents declared in [since, until)."""
    bounds = (since.timestamp(), until.timestamp())
    now = until.timestamp()
    counts = await tx.fetchall(
        f"WITH {_FACTS} SELECT severity, COUNT(*) AS n,"
        " SUM(CASE WHEN ack_due_at IS NOT NULL AND COALESCE(answered_at, ?) > ack_due_at"
        " THEN 1 ELSE 0 END) AS ack_breaches,"
        " SUM(CASE WHEN resolve_due_at IS NOT NULL AND COALESCE(resolved_at, ?) > resolve_due_at"
        " THEN 1 ELSE 0 END) AS resolve_breaches"
        " FROM facts GROUP BY severity",
        (*bounds, now, now),
    )
    by_count = {row["severity"]: row for row in counts}
    figures = {
        name: await _figures(tx, metric, "severity", since, until)
        for name, metric in METRICS.items()
    }
    per_severity = []
    for severity in Severity:
        row = by_count.get(severity.value)
        per_severity.append(
            SeverityStats(
                severity=severity,
                incidents=int(row["n"]) if row else 0,
                mtta=figures["mtta"].get(severity.value, Figure()),
                mttr=figures["mttr"].get(severity.value, Figure()),
                mttd=figures["mttd"].get(severity.value, Figure()),
                ack_breaches=int(row["ack_breaches"] or 0) if row else 0,
                resolve_breaches=int(row["resolve_breaches"] or 0) if row else 0,
            )
        )
    return Stats(
        since=since,
        until=until,
        days=days,
        by_severity=tuple(per_severity),
        weeks=tuple(await _weeks(tx, since, until)),
    )


async def _weeks(tx: Tx, since: datetime, until: datetime) -> list[WeekStats]:
    week = week_expr(tx.dialect)
    rows = await tx.fetchall(
        f"WITH {_FACTS} SELECT {week} AS week, severity, COUNT(*) AS n"
        " FROM facts GROUP BY 1, severity",
        (since.timestamp(), until.timestamp()),
    )
    mttr = await _figures(tx, METRICS["mttr"], week, since, until)
    counts: dict[int, dict[Severity, int]] = {}
    for row in rows:
        counts.setdefault(int(row["week"]), {})[Severity(row["severity"])] = int(row["n"])
    # Every week of the window, empty ones included, so the chart's groups are the weeks.
    first = int((since.timestamp() - _MONDAY) // WEEK)
    last = int((until.timestamp() - 1 - _MONDAY) // WEEK)
    weeks = []
    for number in range(first, last + 1):
        figure = mttr.get(str(number)) or mttr.get(f"{number}.0")
        weeks.append(
            WeekStats(
                start=utc_from_timestamp(_MONDAY + number * WEEK),
                counts=counts.get(number, {}),
                mttr_median=figure.median if figure else None,
            )
        )
    return weeks


def window(until: datetime, days: int) -> tuple[datetime, datetime]:
    return until - timedelta(days=days), until
