"""Similar past incidents through each store's own text search: SQLite FTS5 (bm25) or
PostgreSQL full text (a weighted tsvector with a GIN index, ts_rank). Never a scan.

The index holds each incident's title, services and timeline text; it is rewritten in the
transaction of every change, so it is as current as the incident. A search asks for any of
the meaningful words of an incident's title, services and impact (OR), ranks title matches
above service matches above timeline matches, and returns only earlier incidents that are
resolved: the point is to start from what fixed it last time.
"""

from __future__ import annotations

import re

from bot import refs
from bot.incidents import journal
from bot.incidents import storage as incidents
from bot.models import SYSTEM, Incident
from bot.reports import storage
from bot.reports.models import Postmortem, SimilarIncident, latest_resolution
from bot.store import Statements, Tx

_WORD = re.compile(r"[A-Za-z0-9]+")
# Too common in incident titles to tell incidents apart.
_STOP = frozenset(
    "a an and are as at be by down for from in is it of on or the to was with not".split()
)
_MENTION = re.compile(r"<[@#!][^>]*>")


def terms(*texts: str, limit: int = 24) -> list[str]:
    """Distinct lowercase words worth searching for (letters and digits only, so safe to
    put in a MATCH or tsquery expression)."""
    seen: dict[str, None] = {}
    for text in texts:
        for word in _WORD.findall(_MENTION.sub(" ", text).lower()):
            if len(word) > 1 and word not in _STOP:
                seen.setdefault(word, None)
    return list(seen)[:limit]


async def reindex(tx: Tx, incident: Incident, *, new: bool = False) -> None:
    """Rewrite the incident's search document from its title, services and timeline.

    `new`: the incident is being declared in `tx`, so it has neither a postmortem nor a
    document yet, and its timeline is what `tx` recorded: nothing is read."""
    if new:
        events = journal.recorded(tx, incident.id)
    else:
        events = await incidents.timeline(tx, incident.id)
    # What people wrote (declaration, updates, notes, resolution), not the bot's own pages.
    body = " ".join(
        refs.plain(refs.of_event(e), lambda _ref: " ") for e in events if e.actor != SYSTEM.user_id
    )
    if new:
        postmortem = Postmortem(incident_id=incident.id)
    else:
        postmortem = await storage.get_postmortem(tx, incident.id)
        await tx.execute_nowait("DELETE FROM incident_search WHERE incident_id = ?", (incident.id,))
    body = " ".join([incident.impact, body, postmortem.root_cause, postmortem.resolution])
    services = " ".join(incident.services)
    # The DELETE and INSERT are not waited for: they go with the transaction's next statement.
    await tx.execute_nowait(
        "INSERT INTO incident_search (incident_id, title, services, body) VALUES (?, ?, ?, ?)",
        (incident.id, incident.title, services, body[:200_000]),
    )


async def similar(tx: Statements, incident: Incident, limit: int = 3) -> list[SimilarIncident]:
    """Up to `limit` earlier incidents that look like this one, best first (never a drill:
    a practice run's fix is no precedent)."""
    words = terms(incident.title, " ".join(incident.services), incident.impact)
    if not words:
        return []
    if tx.dialect == "postgres":
        rows = await tx.fetchall(
            "SELECT s.incident_id, ts_rank(s.document, q) AS score"
            " FROM incident_search s JOIN incidents i ON i.id = s.incident_id,"
            " to_tsquery('english', ?) q"
            " WHERE s.document @@ q AND s.incident_id <> ? AND i.declared_at < ?"
            " AND i.status = 'resolved' AND NOT i.drill"
            f" ORDER BY score DESC, i.declared_at DESC LIMIT {int(limit)}",
            (" | ".join(words), incident.id, incident.declared_at.timestamp()),
        )
    else:
        match = " OR ".join(f'"{word}"' for word in words)
        rows = await tx.fetchall(
            "SELECT s.incident_id, -bm25(incident_search, 0.0, 10.0, 5.0, 1.0) AS score"
            " FROM incident_search s JOIN incidents i ON i.id = s.incident_id"
            " WHERE incident_search MATCH ? AND s.incident_id <> ? AND i.declared_at < ?"
            " AND i.status = 'resolved' AND NOT i.drill"
            f" ORDER BY score DESC, i.declared_at DESC LIMIT {int(limit)}",
            (match, incident.id, incident.declared_at.timestamp()),
        )
    found = []
    for row in rows:
        past = await incidents.get(tx, row["incident_id"])
        if past is None:
            continue
        postmortem = await storage.get_postmortem(tx, past.id)
        # What fixed it is the fix that held: a reopened incident's last resolution, as its
        # report and postmortem form show it, not one written before the reopening.
        reopened_at = await storage.last_reopened(tx, past.id)
        found.append(
            SimilarIncident(
                incident=past,
                root_cause=postmortem.root_cause,
                resolution=latest_resolution(past, postmortem, reopened_at),
                score=float(row["score"]),
            )
        )
    return found
