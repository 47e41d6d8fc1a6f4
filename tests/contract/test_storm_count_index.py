"""The storm cap's count (bot.alerts.storm.COUNT_SQL) reads the incidents of its window
through the index incidents_declared (0026), on both stores: every batch of a storm asks it
under the storm lock, and without the index it read every incident ever declared."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from bot.alerts.storm import COUNT_SQL, count_params
from bot.models import SYSTEM
from bot.store import Store

YEAR = 5000  # incidents over a year, one in ten declared by the bot, on four alerts each
# The alerts of the bot's incidents: the one that declared it, three that joined.
_ALERTS = (
    "INSERT INTO alerts (fingerprint, starts_at, source, service, name, severity, status,"
    " outcome, labels, annotations, links, received_at, incident_id)"
    " SELECT i.id || '-' || k.n, 's', 'alertmanager', 'svc', 'Down', 'P2', 'resolved',"
    " CASE WHEN k.n = 0 THEN 'declared' ELSE 'attached' END, '{}', '{}', '[]',"
    " i.declared_at, i.id"
    " FROM incidents i, (SELECT 0 AS n UNION ALL SELECT 1 UNION ALL SELECT 2"
    " UNION ALL SELECT 3) k WHERE i.declared_by = ?"
)
_ROWS = {
    "postgres": (
        "INSERT INTO incidents (id, day, seq, title, severity, status, declared_by,"
        " declared_at, updated_at)"
        " SELECT 'INC-' || n, 'd' || n, 1, 't', 'P2', 'resolved',"
        " CASE WHEN n % 10 = 0 THEN ? ELSE 'U0PERSON' END, ? - n * 6300.0, ? - n * 6300.0"
        " FROM generate_series(1, ?) AS n"
    ),
    "sqlite": (
        "WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < ?)"
        " INSERT INTO incidents (id, day, seq, title, severity, status, declared_by,"
        " declared_at, updated_at)"
        " SELECT 'INC-' || n, 'd' || n, 1, 't', 'P2', 'resolved',"
        " CASE WHEN n % 10 = 0 THEN ? ELSE 'U0PERSON' END, ? - n * 6300.0, ? - n * 6300.0"
        " FROM k"
    ),
}


async def test_the_storm_cap_counts_the_window_through_the_declarations_index(
    store: Store,
) -> None:
    now = time.time()
    params: tuple[object, ...] = (SYSTEM.user_id, now, now, YEAR)
    if store.dialect == "sqlite":
        params = (YEAR, SYSTEM.user_id, now, now)
    async with store.transaction() as tx:
        await tx.execute(_ROWS[store.dialect], params)
        await tx.execute(_ALERTS, (SYSTEM.user_id,))
        await tx.execute("ANALYZE")
    since = datetime.fromtimestamp(now, UTC) - timedelta(minutes=10)
    async with store.transaction() as tx:
        if store.dialect == "postgres":
            rows = await tx.fetchall("EXPLAIN " + COUNT_SQL, count_params(since))
            plan = "\n".join(str(next(iter(row.values()))) for row in rows)
        else:
            rows = await tx.fetchall("EXPLAIN QUERY PLAN " + COUNT_SQL, count_params(since))
            plan = "\n".join(str(row["detail"]) for row in rows)
        [count] = await tx.fetchall(COUNT_SQL, count_params(since))
    assert "incidents_declared" in plan, plan
    assert int(count["n"]) == 0  # none of the year's incidents is within the window
