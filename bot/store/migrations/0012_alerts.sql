-- Alerts in (bot.alerts). Each alert occurrence is one row, unique by (fingerprint,
-- starts_at): Alertmanager's resends and retries, on any replica, insert nothing twice.
-- `outcome` is `pending` from the post that recorded it until the worker decides it
-- (declared, attached, reopened, recorded, ignored); `resolution_pending` is set when its
-- resolution arrives and cleared once told. `incident_id` is the incident it opened, joined or
-- reopened (NULL when recorded only). `told_firing` and `told_resolved` are the batch (see
-- alert_incidents) whose message told Slack of it.

CREATE TABLE alerts (
    id {autoid},
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
    told_resolved INTEGER,
    UNIQUE (fingerprint, starts_at)
);
CREATE INDEX alerts_by_incident ON alerts (incident_id, status);
CREATE INDEX alerts_undecided ON alerts (service)
    WHERE outcome = 'pending' OR resolution_pending = 1;

-- One row per service ever alerted on: locked while an alert for that service is decided, so
-- two replicas never open two incidents for it. `incident_id` is its latest alert incident.
CREATE TABLE alert_services (
    service TEXT PRIMARY KEY,
    incident_id TEXT REFERENCES incidents (id),
    updated_at DOUBLE PRECISION NOT NULL
);

-- Per incident that alerts joined: whether a thread message is queued (one per batch), the
-- batch counter, and whether the clearing of its last alert was told.
CREATE TABLE alert_incidents (
    incident_id TEXT PRIMARY KEY REFERENCES incidents (id),
    service TEXT NOT NULL,
    post_queued INTEGER NOT NULL DEFAULT 0,
    batches INTEGER NOT NULL DEFAULT 0,
    diagnosed_at DOUBLE PRECISION
);

-- Silences created from Slack (Alertmanager's IDs), for the record.
CREATE TABLE alert_silences (
    silence_id TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    batch INTEGER NOT NULL,
    matchers TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    ends_at DOUBLE PRECISION NOT NULL
);
