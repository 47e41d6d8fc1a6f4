-- An alert occurrence is its monitor's: unique by (source, fingerprint, starts_at), no longer
-- (fingerprint, starts_at). Grafana's and Alertmanager's fingerprints are computed from the
-- labels alone, so two monitors alerting on identical label sets made one alert, each
-- marking the other's resolved. `source` (the endpoint: alertmanager, grafana, generic) was
-- recorded from the start, so every row already has its scope; no row changes.
-- dialect: postgres
ALTER TABLE alerts DROP CONSTRAINT alerts_fingerprint_starts_at_key;
CREATE UNIQUE INDEX alerts_identity ON alerts (source, fingerprint, starts_at);
-- dialect: sqlite
-- SQLite drops no table constraint: the table is rebuilt, its rows (IDs kept) copied.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE alerts_0025 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    source TEXT NOT NULL,
    service TEXT NOT NULL,
    name TEXT NOT NULL,
    severity TEXT,
    status TEXT NOT NULL,
    outcome TEXT NOT NULL,
    labels TEXT NOT NULL,
    annotations TEXT NOT NULL,
    links TEXT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    resolved_at DOUBLE PRECISION,
    resolution_pending INTEGER NOT NULL DEFAULT 0,
    incident_id TEXT REFERENCES incidents (id),
    told_firing INTEGER,
    told_resolved INTEGER
);
INSERT INTO alerts_0025 (id, fingerprint, starts_at, source, service, name, severity, status,
    outcome, labels, annotations, links, received_at, resolved_at, resolution_pending,
    incident_id, told_firing, told_resolved)
    SELECT id, fingerprint, starts_at, source, service, name, severity, status, outcome,
    labels, annotations, links, received_at, resolved_at, resolution_pending, incident_id,
    told_firing, told_resolved
    FROM alerts;
DROP TABLE alerts;
ALTER TABLE alerts_0025 RENAME TO alerts;
CREATE UNIQUE INDEX alerts_identity ON alerts (source, fingerprint, starts_at);
CREATE INDEX alerts_by_incident ON alerts (incident_id, status);
CREATE INDEX alerts_undecided ON alerts (service)
    WHERE outcome = 'pending' OR resolution_pending = 1;
